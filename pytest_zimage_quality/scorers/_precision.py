"""The scorers' numerics: strict fp32 by default, TF32 or bf16 on request, flags restored after.

Strict IEEE fp32 is the default (``precision="fp32"``: TF32 off), because the H100 benchmark
in ``docs/scorers.md`` measured TF32 outside the exactness bounds (LPIPS moved by 1.0e-5,
CLIPScore by 7e-5) for a saving of ~2 ms per image out of ~13. ``precision="tf32"`` allows
TF32 for cuBLAS matmuls and cuDNN convolutions; ``"bf16"`` runs the networks under bf16
autocast (1e-3 off: not for gating). The scorer sets ``torch.backends.cuda.matmul`` /
``torch.backends.cudnn`` TF32 flags only for the duration of its own calls and restores them
afterwards (note that PyTorch's own default allows TF32 in cuDNN convolutions).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ScorerError
from ._defaults import PRECISIONS

if TYPE_CHECKING:
    import torch

__all__ = ["check_precision", "precision_label", "precision_scope"]


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a :class:`ScorerError`."""
    if precision not in PRECISIONS:
        raise ScorerError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    return precision


def precision_label(precision: str, device: torch.device) -> str:
    """How a report header names the numerics of ``precision`` on ``device``."""
    if precision == "tf32":
        return "fp32 (TF32 allowed)" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return "fp32 (strict, no TF32)" if device.type == "cuda" else "fp32"
    return "bf16 autocast"


@contextmanager
def precision_scope(device: torch.device, precision: str) -> Iterator[None]:
    """Inference mode plus the numerics of ``precision`` on ``device``, restored on exit.

    ``tf32``: fp32 tensors, TF32 allowed for cuBLAS matmuls and cuDNN convolutions (CUDA
    only; a no-op elsewhere). ``fp32``: TF32 off (strict IEEE fp32). ``bf16``: TF32 on and
    bf16 autocast. The global TF32 flags are set for the duration of the block only, through
    whichever of torch's two flag APIs the process already uses (mixing them is an error in
    torch >= 2.9).
    """
    import torch  # noqa: PLC0415

    check_precision(precision)
    with ExitStack() as stack:
        stack.enter_context(torch.inference_mode())
        if device.type == "cuda":
            stack.enter_context(_tf32_flags(precision != "fp32"))
        if precision == "bf16":
            stack.enter_context(torch.autocast(device_type=device.type, dtype=torch.bfloat16))
        yield


_flags_lock = threading.RLock()


@contextmanager
def _tf32_flags(enabled: bool) -> Iterator[None]:
    import torch  # noqa: PLC0415

    backends: Any = torch.backends
    with _flags_lock:
        legacy = True
        try:
            saved: tuple[Any, Any] = (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32)
        except (RuntimeError, AttributeError):  # the process uses the fp32_precision API
            legacy = False
            saved = (backends.cuda.matmul.fp32_precision, backends.cudnn.conv.fp32_precision)
        try:
            if legacy:
                backends.cuda.matmul.allow_tf32 = enabled
                backends.cudnn.allow_tf32 = enabled
            else:
                value = "tf32" if enabled else "ieee"
                backends.cuda.matmul.fp32_precision = value
                backends.cudnn.conv.fp32_precision = value
            yield
        finally:
            if legacy:
                backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32 = saved
            else:
                backends.cuda.matmul.fp32_precision, backends.cudnn.conv.fp32_precision = saved
