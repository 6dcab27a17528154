"""What every scorer needs from torch: the device, the optional imports, quiet seeded builds.

A new scorer builds its network through :func:`build_quietly` (third-party construction
warnings must not trip ``filterwarnings = error``) and, for random weights, :func:`seeded`
(the same weights in every run); it imports its libraries with :func:`import_optional` so a
missing package names the command that installs it. torch is imported inside the functions.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ScorerError
from ._defaults import DEFAULT_DEVICE

if TYPE_CHECKING:
    import torch

__all__ = ["build_quietly", "import_optional", "resolve_device", "seeded", "stack_on"]

_RANDOM_SEED = 0
_INSTALL_HINT = "pip install torch torchvision open_clip_torch lpips"


def import_optional(name: str) -> Any:
    """Import ``name``; if it is missing, say which packages the scorers need."""
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"the zimage scorers need {name!r}, which is not installed: {_INSTALL_HINT}"
        ) from exc


def resolve_device(spec: str | torch.device = DEFAULT_DEVICE) -> torch.device:
    """Turn a device spec into a ``torch.device`` that exists here.

    ``auto`` is the first CUDA device (``cuda:0``) when CUDA is available, else the CPU;
    ``cpu``; ``cuda`` (= ``cuda:0``); ``cuda:N``; ``mps``. Anything else, or a device that is
    not there, raises :class:`ScorerError`.
    """
    import torch  # noqa: PLC0415

    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    m = re.fullmatch(r"cuda(?::(\d+))?", text)
    if m:
        index = int(m.group(1) or 0)
        if not torch.cuda.is_available():
            raise ScorerError(
                f"device {spec!r} asked for, but torch sees no CUDA device "
                f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})",
                hint="use --zimage-device cpu (or auto), or install a CUDA build of torch",
            )
        count = torch.cuda.device_count()
        if index >= count:
            raise ScorerError(
                f"device {spec!r} asked for, but torch sees {count} CUDA device(s) "
                f"(cuda:0..cuda:{count - 1})",
                hint="pick an index below the device count (check CUDA_VISIBLE_DEVICES)",
            )
        return torch.device("cuda", index)
    if text == "mps":
        if not torch.backends.mps.is_available():
            raise ScorerError(
                "device 'mps' asked for, but torch sees no MPS device",
                hint="use --zimage-device cpu or auto",
            )
        return torch.device("mps")
    raise ScorerError(
        f"{spec!r} is not a scorer device",
        hint="use auto (first CUDA GPU, else CPU), cpu, cuda, cuda:N or mps",
    )


def stack_on(device: torch.device, images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack ``(3, H, W)`` images into ``(N, 3, H, W)`` on ``device``: each image moves on
    its own (no host-side copy into a batch; images already there do not move at all)."""
    import torch  # noqa: PLC0415

    moved = [img.to(device, non_blocking=True) for img in images]
    return moved[0][None] if len(moved) == 1 else torch.stack(moved)


class _DropRandomInitNotice(logging.Filter):
    """open_clip logs "No pretrained weights loaded ... initialized randomly" on the root
    logger; a scorer built with ``random_weights=True`` says so itself, louder."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


def build_quietly(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Build a third-party model with its construction-time warnings kept local.

    torchvision's ``pretrained=`` deprecation (lpips), timm/open_clip import notices and
    ``torch.load`` notices are not the user's business and must not trip
    ``filterwarnings = error``.
    """
    notice = _DropRandomInitNotice()
    root = logging.getLogger()
    root.addFilter(notice)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return fn(*args, **kwargs)
    finally:
        root.removeFilter(notice)


def seeded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with torch's CPU RNG seeded, leaving the caller's RNG state untouched, so
    random weights are the same in every run (dry runs are reproducible)."""
    import torch  # noqa: PLC0415

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_RANDOM_SEED)
        return fn(*args, **kwargs)
