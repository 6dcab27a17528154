"""The two scorers: CLIPScore (open_clip) and LPIPS (the ``lpips`` package), resident and batched.

Both are built once with ``load(...)`` onto a device and then score many images; their
numbers are the libraries' own numbers (see ``docs/scorers.md`` for how that is checked):

- :class:`CLIPScorer` — raw cosine similarity of the L2-normalised open_clip image and text
  embeddings (the study's scale, ~0.33 for a good render). Text embeddings are cached per
  prompt. Image preprocessing (bicubic shortest-side resize, centre crop, normalise) runs on
  the scorer's device and reproduces PIL's 8-bit resampling bit for bit, so the batched GPU
  path sees exactly the pixels that open_clip's own ``preprocess`` would have produced.
- :class:`LPIPSScorer` — ``lpips.LPIPS`` (AlexNet trunk by default, VGG selectable) on
  batched pairs mapped to [-1, 1] exactly as ``lpips.im2tensor`` maps them. Pairs of
  different sizes raise :class:`~pytest_zimage_quality.ImageSizeMismatchError`; nothing is
  resized silently.

Weights are resolved offline, never downloaded implicitly: open_clip tags are looked up in
the Hugging Face cache (or open_clip's URL cache), the LPIPS trunk in torchvision's hub cache
(``$TORCH_HOME/hub/checkpoints``), or both come from a file the user names. When a file is
missing, :class:`~pytest_zimage_quality.WeightsNotFoundError` names it, says where it was
looked for and gives the command that fetches it. Random weights are used only on request
(``random_weights=True``); such a scorer reports ``weights_identity == "random"`` and its
:meth:`describe` says :data:`RANDOM_WEIGHTS_BANNER`.

Numerics: strict IEEE fp32 by default (``precision="fp32"``: TF32 off), because the H100
benchmark in ``docs/scorers.md`` measured TF32 outside the exactness bounds (LPIPS moved by
1.0e-5, CLIPScore by 7e-5) for a saving of ~2 ms per image out of ~13. ``precision="tf32"``
allows TF32 for cuBLAS matmuls and cuDNN convolutions; ``"bf16"`` runs the networks under
bf16 autocast (1e-3 off: not for gating). The scorer sets ``torch.backends.cuda.matmul`` /
``torch.backends.cudnn`` TF32 flags only for the duration of its own calls and restores them
afterwards (note that PyTorch's own default allows TF32 in cuDNN convolutions).

torch, torchvision, open_clip and lpips are imported inside the functions that use them, so
importing this module (and ``pytest --help``) stays cheap. This module does not import pytest.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ImageSizeMismatchError, ScorerError, WeightsNotFoundError, ZImageWarning
from .images import to_uint8_chw, to_uint8_chw_many

if TYPE_CHECKING:
    import torch

    from .images import ImageLike

__all__ = [
    "DEFAULT_CLIP_MODEL",
    "DEFAULT_CLIP_PRETRAINED",
    "DEFAULT_LPIPS_NET",
    "DEFAULT_PRECISION",
    "LPIPS_TRUNK_URLS",
    "PRECISIONS",
    "RANDOM",
    "RANDOM_WEIGHTS_BANNER",
    "CLIPScorer",
    "LPIPSScorer",
    "ResolvedWeights",
    "precision_scope",
    "resolve_clip_weights",
    "resolve_device",
    "resolve_lpips_weights",
    "sha256_file",
]

#: open_clip architecture used by default (the study's model).
DEFAULT_CLIP_MODEL = "ViT-B-32"
#: Default pretrained tag: LAION-2B, trained with the standard GELU that ``ViT-B-32`` builds.
#: (OpenAI's weights need QuickGELU: use model ``ViT-B-32-quickgelu`` with tag ``openai``.)
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"
#: LPIPS trunk network used by default (the study's).
DEFAULT_LPIPS_NET = "alex"
#: ``weights_identity`` and ``pretrained`` of a randomly initialised scorer.
RANDOM = "random"
#: What every report of a run with random weights must say.
RANDOM_WEIGHTS_BANNER = "RANDOM WEIGHTS — NOT A QUALITY MEASUREMENT"
#: The ``precision`` values a scorer accepts.
PRECISIONS = ("fp32", "tf32", "bf16")
#: The scorers' default numerics: strict IEEE fp32 (see the module docstring).
DEFAULT_PRECISION = "fp32"
#: The ImageNet weights torchvision serves for LPIPS' trunks (what ``lpips`` loads through
#: ``torchvision.models.alexnet(pretrained=True)`` / ``vgg16(pretrained=True)``).
LPIPS_TRUNK_URLS = {
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
}

_RANDOM_SEED = 0
_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".ckpt", ".npz")
_HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
_HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"
_INSTALL_HINT = "pip install torch torchvision open_clip_torch lpips"


# --------------------------------------------------------------------------- lazy imports


def _import(name: str) -> Any:
    import importlib  # noqa: PLC0415

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"the zimage scorers need {name!r}, which is not installed: {_INSTALL_HINT}"
        ) from exc


# --------------------------------------------------------------------------- devices


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
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


# --------------------------------------------------------------------------- numerics


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

    if precision not in PRECISIONS:
        raise ScorerError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
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


# --------------------------------------------------------------------------- weights


_sha_cache: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file (cached per path, size and mtime for the process)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _sha_cache:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _sha_cache[key] = h.hexdigest()
    return _sha_cache[key]


@dataclass(frozen=True)
class ResolvedWeights:
    """A weights file found offline, and what the scorer needs to know about it."""

    path: Path
    #: Where it came from, for reports: ``hf:<repo>/<file>``, ``url:<url>``, ``file``, ...
    source: str
    #: open_clip preprocess overrides that come with a pretrained tag (mean, std, ...).
    preprocess: dict[str, Any] = field(default_factory=dict)


def _hf_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The Hugging Face hub cache, read from the environment at call time."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return Path(env).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _safe_alternatives(filename: str) -> list[str]:
    # open_clip's own preference (pretrained._get_safe_alternatives): safetensors first.
    if filename == _HF_WEIGHTS_NAME:
        return [_HF_SAFE_WEIGHTS_NAME]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors"]
    return []


def _check_gelu(model: str, pretrained: str, tag_cfg: dict[str, Any]) -> None:
    open_clip = _import("open_clip")
    model_cfg = open_clip.get_model_config(model) or {}
    model_quick = bool(model_cfg.get("quick_gelu", False))
    tag_quick = bool(tag_cfg.get("quick_gelu", False))
    if model_quick == tag_quick:
        return
    if tag_quick:
        better = f"{model}-quickgelu"
        fix = (
            f"use model {better!r} with tag {pretrained!r}"
            if better in open_clip.list_models()
            else "use a tag trained with standard GELU"
        )
        if model == DEFAULT_CLIP_MODEL:
            fix += f", or the default tag {DEFAULT_CLIP_PRETRAINED!r}"
    else:
        base = model.removesuffix("-quickgelu")
        fix = f"use model {base!r} with tag {pretrained!r}"
    raise ScorerError(
        f"open_clip model {model!r} uses {'QuickGELU' if model_quick else 'GELU'} but the "
        f"weights {pretrained!r} were trained with {'QuickGELU' if tag_quick else 'GELU'}; "
        "open_clip would build it anyway and score with the wrong activation",
        hint=f"{fix} (--zimage-clip-model / --zimage-clip-pretrained)",
    )


def resolve_clip_weights(
    model: str = DEFAULT_CLIP_MODEL,
    pretrained: str = DEFAULT_CLIP_PRETRAINED,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> ResolvedWeights:
    """Find the open_clip weights for ``(model, pretrained)`` without touching the network.

    ``pretrained`` is an open_clip tag (looked up in the Hugging Face hub cache, or for
    URL-only tags in open_clip's ``~/.cache/clip``) or a path to a weights file. A tag whose
    activation does not match the model's (``('ViT-B-32', 'openai')``) is refused. With
    ``download=True`` a missing tag file is fetched through ``huggingface_hub``; by default
    a missing file raises :class:`WeightsNotFoundError` with the command that fetches it.
    """
    open_clip = _import("open_clip")
    if model not in open_clip.list_models():
        raise ScorerError(
            f"{model!r} is not an open_clip model name",
            hint=f"use a name from open_clip.list_models(), e.g. {DEFAULT_CLIP_MODEL!r}",
        )
    tag_cfg: dict[str, Any] = dict(open_clip.get_pretrained_cfg(model, pretrained) or {})
    if tag_cfg:
        _check_gelu(model, pretrained, tag_cfg)
        preprocess = {
            k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if tag_cfg.get(k)
        }
        if tag_cfg.get("file"):
            return ResolvedWeights(Path(tag_cfg["file"]), "file", preprocess)
        if tag_cfg.get("hf_hub"):
            return _resolve_hf(
                model,
                pretrained,
                tag_cfg["hf_hub"],
                preprocess,
                cache_dir=cache_dir,
                download=download,
            )
        if tag_cfg.get("url"):
            return _resolve_url(
                model,
                pretrained,
                tag_cfg["url"],
                preprocess,
                cache_dir=cache_dir,
                download=download,
            )
    path = Path(pretrained).expanduser()
    if path.is_file():
        return ResolvedWeights(path, "file")
    if os.sep in pretrained or "/" in pretrained or pretrained.endswith(_WEIGHT_SUFFIXES):
        raise WeightsNotFoundError(
            f"CLIP weights file {pretrained!r} not found (resolved to {path.resolve()})",
            filename=str(path),
            searched=[str(path.resolve())],
            hint="check the path given to --zimage-clip-pretrained, or give an open_clip tag "
            f"such as {DEFAULT_CLIP_PRETRAINED!r}",
        )
    tags = open_clip.list_pretrained_tags_by_model(model)
    raise ScorerError(
        f"{pretrained!r} is neither an open_clip pretrained tag for {model!r} nor a file",
        hint=f"tags for {model}: {', '.join(tags) if tags else '(none)'}; or give a weights file",
    )


def _resolve_hf(
    model: str,
    pretrained: str,
    hf_hub: str,
    preprocess: dict[str, Any],
    *,
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
) -> ResolvedWeights:
    hub = _import("huggingface_hub")
    repo, filename = os.path.split(hf_hub)
    filename = filename or _HF_WEIGHTS_NAME
    hub_cache = _hf_cache_dir(cache_dir)
    candidates = [*_safe_alternatives(filename), filename]
    for name in candidates:
        found = hub.try_to_load_from_cache(repo, name, cache_dir=str(hub_cache))
        if isinstance(found, str) and Path(found).is_file():
            return ResolvedWeights(Path(found), f"hf:{repo}/{name}", preprocess)
    snapshot = hub_cache / f"models--{repo.replace('/', '--')}" / "snapshots" / "<revision>"
    searched = [str(snapshot / name) for name in candidates]
    cmd = f"hf download {repo} {filename}"
    if cache_dir is not None:
        cmd += f" --cache-dir {hub_cache}"
    if download:
        try:
            got = hub.hf_hub_download(repo, filename, cache_dir=str(hub_cache))
        except Exception as exc:  # network, auth, offline mode: all mean "not available"
            raise WeightsNotFoundError(
                f"CLIP weights for {model}/{pretrained} ({repo}, file {filename}) are not in "
                f"the Hugging Face cache {hub_cache} and could not be downloaded: {exc}",
                filename=filename,
                searched=searched,
                hint=f"fetch it where the network is reachable: `{cmd}`",
            ) from exc
        return ResolvedWeights(Path(got), f"hf:{repo}/{filename}", preprocess)
    raise WeightsNotFoundError(
        f"CLIP weights for {model}/{pretrained} are not available offline: file {filename} "
        f"of the Hugging Face repo {repo} is not in the cache {hub_cache} "
        f"(looked for {' and '.join(candidates)})",
        filename=filename,
        searched=searched,
        hint=f"fetch it with `{cmd}` (huggingface_hub's CLI; HF_HOME / HF_HUB_CACHE choose "
        "the cache), or pass the file itself: --zimage-clip-pretrained PATH; "
        f"--zimage-weights random runs without weights ({RANDOM_WEIGHTS_BANNER})",
    )


def _resolve_url(
    model: str,
    pretrained: str,
    url: str,
    preprocess: dict[str, Any],
    *,
    cache_dir: str | os.PathLike[str] | None,
    download: bool,
) -> ResolvedWeights:
    clip_cache = Path(cache_dir).expanduser() if cache_dir else Path.home() / ".cache" / "clip"
    target = clip_cache / url.rsplit("/", 1)[-1]
    if target.is_file():
        return ResolvedWeights(target, f"url:{url}", preprocess)
    cmd = f"mkdir -p {clip_cache} && curl -L -o {target} {url}"
    if download:
        open_clip = _import("open_clip")
        try:
            got = open_clip.pretrained.download_pretrained_from_url(url, cache_dir=str(clip_cache))
        except Exception as exc:
            raise WeightsNotFoundError(
                f"CLIP weights for {model}/{pretrained} could not be downloaded from {url}: {exc}",
                filename=target.name,
                searched=[str(target)],
                hint=f"fetch it with `{cmd}`",
            ) from exc
        return ResolvedWeights(Path(got), f"url:{url}", preprocess)
    raise WeightsNotFoundError(
        f"CLIP weights for {model}/{pretrained} are not available offline: {target.name} "
        f"is not in {clip_cache}",
        filename=target.name,
        searched=[str(target)],
        hint=f"fetch it with `{cmd}`, or pass the file: --zimage-clip-pretrained PATH",
    )


def resolve_lpips_weights(
    net: str = DEFAULT_LPIPS_NET,
    weights: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
) -> ResolvedWeights:
    """Find the ImageNet weights of LPIPS' trunk (AlexNet / VGG16) without the network.

    ``weights`` names a local file; otherwise torchvision's hub cache is used
    (``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``, where
    ``lpips`` would have had torchvision download it). A cached file whose sha256 does not
    start with the prefix in its name (a partial download) is refused.
    """
    if net not in LPIPS_TRUNK_URLS:
        raise ScorerError(
            f"LPIPS net {net!r} is not supported", hint=f"use one of {', '.join(LPIPS_TRUNK_URLS)}"
        )
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"LPIPS trunk weights file {str(weights)!r} not found "
                f"(resolved to {path.resolve()})",
                filename=str(path),
                searched=[str(path.resolve())],
                hint="check the path given to --zimage-lpips-weights, or leave it unset to use "
                "torchvision's cache ($TORCH_HOME/hub/checkpoints)",
            )
        return ResolvedWeights(path, "file")
    import torch  # noqa: PLC0415

    url = LPIPS_TRUNK_URLS[net]
    filename = url.rsplit("/", 1)[-1]
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    target = checkpoints / filename
    cmd = f"mkdir -p {checkpoints} && curl -L -o {target} {url}"
    if not target.is_file() and download:
        try:
            checkpoints.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(target), progress=False)
        except Exception as exc:
            raise WeightsNotFoundError(
                f"LPIPS {net} trunk weights {filename} could not be downloaded from {url}: {exc}",
                filename=filename,
                searched=[str(target)],
                hint=f"fetch it with `{cmd}`",
            ) from exc
    if not target.is_file():
        raise WeightsNotFoundError(
            f"LPIPS {net} trunk weights are not available offline: {filename} (torchvision's "
            f"ImageNet weights) is not in torchvision's hub cache {checkpoints}",
            filename=filename,
            searched=[str(target)],
            hint=f"fetch it with `{cmd}` (TORCH_HOME moves the cache), or pass the file: "
            f"--zimage-lpips-weights PATH; --zimage-weights random runs without weights "
            f"({RANDOM_WEIGHTS_BANNER})",
        )
    m = re.search(r"-([a-f0-9]{6,})\.", filename)
    if m and not sha256_file(target).startswith(m.group(1)):
        raise ScorerError(
            f"{target} is corrupt or incomplete: its sha256 does not start with {m.group(1)}",
            hint=f"delete it and fetch it again: `rm {target} && {cmd}`",
        )
    return ResolvedWeights(target, f"torchvision:{filename}")


# --------------------------------------------------------------------------- PIL-exact resize

_PRECISION_BITS = 22  # Pillow's Resample.c: 32 - 8 - 2


def _bicubic(x: float) -> float:
    a = -0.5
    x = -x if x < 0.0 else x
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _bilinear(x: float) -> float:
    x = -x if x < 0.0 else x
    return 1.0 - x if x < 1.0 else 0.0


_FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}
_coeff_cache: dict[tuple[int, int, str, int, int], list[list[float]]] = {}


def _pil_coefficients(
    in_size: int, out_size: int, interpolation: str, start: int, stop: int
) -> list[list[float]]:
    """Rows ``start:stop`` of Pillow's 8-bit resampling matrix (``out_size`` x ``in_size``).

    A transcription of ``precompute_coeffs`` + ``normalize_coeffs_8bpc`` in Pillow's
    ``Resample.c``: per output pixel, the filter's taps around the source centre, normalised
    to sum 1, then rounded to fixed point with 22 fractional bits. Values are exact integers.
    """
    key = (in_size, out_size, interpolation, start, stop)
    cached = _coeff_cache.get(key)
    if cached is not None:
        return cached
    filt, base_support = _FILTERS[interpolation]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = base_support * filterscale
    one = 1 << _PRECISION_BITS
    rows: list[list[float]] = []
    for xx in range(start, stop):
        row = [0.0] * in_size
        center = (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        ws = [filt((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for w in ws:
            ww += w
        for x, w in enumerate(ws):
            k = w / ww if ww != 0.0 else w
            row[xmin + x] = float(
                math.trunc(-0.5 + k * one) if k < 0 else math.trunc(0.5 + k * one)
            )
        rows.append(row)
    _coeff_cache[key] = rows
    return rows


def _resize_plan(h: int, w: int, size: int, resize_mode: str) -> tuple[int, int, int, int]:
    """(resized h, resized w, crop top, crop left) of torchvision Resize + CenterCrop."""
    if resize_mode == "squash":
        return size, size, 0, 0
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    top = round((new_h - size) / 2.0)
    left = round((new_w - size) / 2.0)
    return new_h, new_w, top, left


# --------------------------------------------------------------------------- CLIP


class _DropRandomInitNotice(logging.Filter):
    """open_clip logs "No pretrained weights loaded ... initialized randomly" on the root
    logger; a scorer built with ``random_weights=True`` says so itself, louder."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


def _build_quietly(fn: Any, *args: Any, **kwargs: Any) -> Any:
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


def _seeded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call ``fn`` with torch's CPU RNG seeded, leaving the caller's RNG state untouched, so
    random weights are the same in every run (dry runs are reproducible)."""
    import torch  # noqa: PLC0415

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_RANDOM_SEED)
        return fn(*args, **kwargs)


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class CLIPScorer:
    """CLIPScore with an open_clip model held on one device.

    Build it with :meth:`load`; then :meth:`score` (batched) or :meth:`score_one`. The score
    is the raw cosine similarity of the L2-normalised image and text embeddings (not the
    ``100 * max(cos, 0)`` of some papers): ~0.33 for a good render of an English prompt.

    Attributes: ``name`` ("CLIPScore"), ``higher_is_better`` (True), ``model`` (open_clip
    model name), ``pretrained`` (tag or file as given, or ``"random"``), ``device``,
    ``precision``, ``network`` (the ``torch.nn.Module``), ``tokenizer``, ``weights_path``,
    ``weights_identity`` (sha256 of the weights file, or ``"random"``), ``random_weights``,
    ``reference_transform`` (open_clip's own PIL preprocess, for comparisons).
    """

    name: ClassVar[str] = "CLIPScore"
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self,
        *,
        network: Any,
        tokenizer: Any,
        model: str,
        pretrained: str,
        device: torch.device,
        weights_path: Path | None,
        weights_identity: str,
        precision: str = DEFAULT_PRECISION,
        batch_size: int = 32,
        reference_transform: Any = None,
    ) -> None:
        import torch  # noqa: PLC0415

        if precision not in PRECISIONS:
            raise ScorerError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        if batch_size < 1:
            raise ScorerError(f"batch_size must be >= 1, got {batch_size}")
        self.network = network
        self.tokenizer = tokenizer
        self.model = model
        self.pretrained = pretrained
        self.device = device
        self.weights_path = weights_path
        self.weights_identity = weights_identity
        self.random_weights = weights_identity == RANDOM
        self._text_cache: dict[str, torch.Tensor] = {}
        self._precision = precision
        self.batch_size = batch_size
        self.reference_transform = reference_transform
        cfg = dict(getattr(network.visual, "preprocess_cfg", {}) or {})
        size = cfg.get("size", 224)
        if isinstance(size, (tuple, list)):
            if len(size) != 2 or size[0] != size[1]:
                raise ScorerError(
                    f"open_clip model {model!r} wants a non-square input {size}",
                    hint="only square-input models are supported",
                )
            size = size[0]
        self.image_size = int(size)
        self.interpolation = str(cfg.get("interpolation", "bicubic"))
        if self.interpolation == "random":
            self.interpolation = "bicubic"  # open_clip: 'random' means bicubic at inference
        self.resize_mode = str(cfg.get("resize_mode", "shortest"))
        if self.interpolation not in _FILTERS or self.resize_mode not in ("shortest", "squash"):
            raise ScorerError(
                f"open_clip model {model!r} preprocesses with {self.interpolation} / "
                f"{self.resize_mode}, which the scorer does not reproduce",
                hint="use a model whose preprocessing is bicubic or bilinear with resize_mode "
                "'shortest' or 'squash' (all ViT-B/L CLIP models are)",
            )
        mean = cfg.get("mean") or (0.48145466, 0.4578275, 0.40821073)
        std = cfg.get("std") or (0.26862954, 0.26130258, 0.27577711)
        self._mean = torch.as_tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
        self._std = torch.as_tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.context_length = int(getattr(tokenizer, "context_length", 77) or 77)
        self._matrices: dict[tuple[int, int, int, int], torch.Tensor] = {}
        self._lock = threading.RLock()
        #: How many prompts went through the text encoder (each prompt once per scorer).
        self.text_encodes = 0

    @property
    def precision(self) -> str:
        """``fp32`` (default), ``tf32`` or ``bf16``; changing it drops the cached prompts,
        which were encoded with the old numerics."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        if value not in PRECISIONS:
            raise ScorerError(f"precision {value!r} is not one of {', '.join(PRECISIONS)}")
        if value != self._precision:
            self.clear_text_cache()
        self._precision = value

    # ---------------------------------------------------------------- construction

    @classmethod
    def load(
        cls,
        model: str = DEFAULT_CLIP_MODEL,
        pretrained: str = DEFAULT_CLIP_PRETRAINED,
        *,
        device: str | torch.device = "auto",
        random_weights: bool = False,
        precision: str = DEFAULT_PRECISION,
        batch_size: int = 32,
        cache_dir: str | os.PathLike[str] | None = None,
        download: bool = False,
    ) -> CLIPScorer:
        """Build the open_clip model once onto ``device``, in eval and inference mode.

        ``pretrained`` is an open_clip tag or a weights file (see
        :func:`resolve_clip_weights`). ``random_weights=True`` skips the weights entirely and
        initialises the network from a fixed seed: for dry runs and tests, never a quality
        measurement. ``cache_dir`` overrides the Hugging Face hub cache; ``download=True``
        allows fetching a missing tag file (off by default: a missing file is an error that
        says how to fetch it).
        """
        open_clip = _import("open_clip")
        dev = resolve_device(device)
        if random_weights:
            if model not in open_clip.list_models():
                raise ScorerError(
                    f"{model!r} is not an open_clip model name", hint=f"e.g. {DEFAULT_CLIP_MODEL!r}"
                )
            resolved = None
            net, _, transform = _seeded(
                _build_quietly,
                open_clip.create_model_and_transforms,
                model,
                pretrained=None,
                device="cpu",
            )
        else:
            resolved = resolve_clip_weights(
                model, pretrained, cache_dir=cache_dir, download=download
            )
            pp = resolved.preprocess
            try:
                net, _, transform = _build_quietly(
                    open_clip.create_model_and_transforms,
                    model,
                    pretrained=str(resolved.path),
                    device="cpu",
                    image_mean=pp.get("mean"),
                    image_std=pp.get("std"),
                    image_interpolation=pp.get("interpolation"),
                    image_resize_mode=pp.get("resize_mode"),
                )
            except Exception as exc:
                raise ScorerError(
                    f"open_clip could not load {resolved.path} into {model!r}: "
                    f"{type(exc).__name__}: {exc}",
                    hint="is the file a complete open_clip checkpoint for this model? "
                    "(--zimage-clip-model must match the weights)",
                ) from exc
        net = net.to(dev).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        tokenizer = open_clip.get_tokenizer(model)
        return cls(
            network=net,
            tokenizer=tokenizer,
            model=model,
            pretrained=RANDOM if random_weights else pretrained,
            device=dev,
            weights_path=None if resolved is None else resolved.path,
            weights_identity=RANDOM if resolved is None else sha256_file(resolved.path),
            precision=precision,
            batch_size=batch_size,
            reference_transform=transform,
        )

    # ---------------------------------------------------------------- description

    def describe(self) -> str:
        """One line for report headers; says RANDOM WEIGHTS when they are."""
        if self.random_weights:
            weights = RANDOM_WEIGHTS_BANNER
        else:
            weights = f"{self.pretrained} (sha256 {self.weights_identity[:12]})"
        return (
            f"CLIPScore: open_clip {self.model} / {weights}, {self.device}, "
            f"{_precision_label(self.precision, self.device)}"
        )

    def info(self) -> dict[str, Any]:
        """Plain facts for run files and reports."""
        return {
            "name": self.name,
            "model": self.model,
            "pretrained": self.pretrained,
            "weights_identity": self.weights_identity,
            "random_weights": self.random_weights,
            "device": str(self.device),
            "precision": self.precision,
            "higher_is_better": self.higher_is_better,
        }

    def __repr__(self) -> str:
        return f"<CLIPScorer {self.describe()}>"

    # ---------------------------------------------------------------- text

    def _token_count(self, text: str) -> int | None:
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None or not hasattr(self.tokenizer, "sot_token_id"):
            return None
        return len(encode(text)) + 2  # + start and end of text

    def embed_texts(
        self, texts: Sequence[str], labels: Sequence[str | None] | None = None
    ) -> torch.Tensor:
        """L2-normalised text embeddings ``(N, D)``; each distinct prompt is encoded once
        per scorer and cached. A prompt longer than the context is truncated by the tokenizer
        (as open_clip does) with a :class:`ZImageWarning` naming it (by its label if given)."""
        import torch  # noqa: PLC0415

        if labels is not None and len(labels) != len(texts):
            raise ValueError(f"{len(labels)} labels for {len(texts)} texts")
        with self._lock:
            missing: list[str] = []
            missing_labels: list[str | None] = []
            for i, text in enumerate(texts):
                if not isinstance(text, str):
                    raise TypeError(f"prompt {i} is a {type(text).__name__}, not a str")
                if text not in self._text_cache and text not in missing:
                    missing.append(text)
                    missing_labels.append(labels[i] if labels is not None else None)
            if missing:
                for text, label in zip(missing, missing_labels, strict=True):
                    n = self._token_count(text)
                    if n is not None and n > self.context_length:
                        who = f"prompt {label!r}" if label else "prompt"
                        warnings.warn(
                            f"{who} ({_short(text)!r}) is {n} tokens, longer than "
                            f"{self.model}'s {self.context_length}-token context: CLIPScore "
                            f"sees only its first {self.context_length - 2} tokens",
                            ZImageWarning,
                            stacklevel=3,
                        )
                tokens = self.tokenizer(missing).to(self.device)
                with precision_scope(self.device, self.precision):
                    emb = self.network.encode_text(tokens).float()
                    emb = torch.nn.functional.normalize(emb, dim=-1)
                for text, row in zip(missing, emb, strict=True):
                    self._text_cache[text] = row
                self.text_encodes += len(missing)
            if not texts:
                return torch.empty(0, 0, device=self.device)
            return torch.stack([self._text_cache[t] for t in texts])

    def clear_text_cache(self) -> None:
        """Forget the cached prompt embeddings."""
        with self._lock:
            self._text_cache.clear()

    # ---------------------------------------------------------------- images

    def _matrix(self, in_size: int, out_size: int, start: int, stop: int) -> torch.Tensor:
        import torch  # noqa: PLC0415

        key = (in_size, out_size, start, stop)
        m = self._matrices.get(key)
        if m is None:
            rows = _pil_coefficients(in_size, out_size, self.interpolation, start, stop)
            m = torch.tensor(rows, dtype=torch.float64, device=self.device)
            self._matrices[key] = m
        return m

    def _resize_crop(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` uint8 on the device -> ``(B, 3, S, S)`` float64 holding the exact
        8-bit pixels PIL's resize + torchvision's centre crop produce (integers 0..255)."""
        import torch  # noqa: PLC0415

        s = self.image_size
        _, _, h, w = x.shape
        new_h, new_w, top, left = _resize_plan(h, w, s, self.resize_mode)
        y = x.to(torch.float64)
        half = float(1 << (_PRECISION_BITS - 1))
        inv = 1.0 / float(1 << _PRECISION_BITS)
        # Pillow resamples horizontally first, rounding to 8 bits, then vertically.
        if new_w != w:
            m = self._matrix(w, new_w, left, left + s)
            y = torch.matmul(y, m.t())
            y = torch.floor((y + half) * inv).clamp_(0.0, 255.0)
        else:
            y = y[..., :, left : left + s]
        if new_h != h:
            m = self._matrix(h, new_h, top, top + s)
            y = torch.matmul(m, y)
            y = torch.floor((y + half) * inv).clamp_(0.0, 255.0)
        else:
            y = y[..., top : top + s, :]
        return y

    def preprocess(
        self, images: Sequence[ImageLike], labels: Sequence[str | None] | None = None
    ) -> torch.Tensor:
        """Images -> the model's input batch ``(N, 3, S, S)`` float32 on the device: PIL-exact
        bicubic resize of the shortest side, centre crop, ``/255``, normalise by the model's
        mean and std; all on the device, same-sized images in one batched op."""
        import torch  # noqa: PLC0415

        imgs = to_uint8_chw_many(images, labels)
        s = self.image_size
        out = torch.empty((len(imgs), 3, s, s), dtype=torch.float32, device=self.device)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(imgs):
            groups.setdefault((int(img.shape[1]), int(img.shape[2])), []).append(i)
        with torch.inference_mode():
            for idxs in groups.values():
                batch = _stack_on(self.device, [imgs[i] for i in idxs])
                pix = self._resize_crop(batch)
                # ToTensor (uint8 -> float32 / 255) then Normalize, as torchvision does them.
                pix32 = pix.to(torch.float32).div_(255.0).sub_(self._mean).div_(self._std)
                if len(idxs) == len(imgs):
                    out = pix32
                else:
                    out[torch.as_tensor(idxs, device=self.device)] = pix32
        return out

    def embed_images(
        self, images: Sequence[ImageLike], labels: Sequence[str | None] | None = None
    ) -> torch.Tensor:
        """L2-normalised image embeddings ``(N, D)`` on the device, in batches."""
        import torch  # noqa: PLC0415

        chunks = []
        for start in range(0, len(images), self.batch_size):
            stop = start + self.batch_size
            x = self.preprocess(images[start:stop], None if labels is None else labels[start:stop])
            with precision_scope(self.device, self.precision):
                emb = self.network.encode_image(x).float()
                chunks.append(torch.nn.functional.normalize(emb, dim=-1))
        if not chunks:
            return torch.empty(0, 0, device=self.device)
        return torch.cat(chunks)

    # ---------------------------------------------------------------- scores

    def score(
        self,
        images: Sequence[ImageLike],
        texts: Sequence[str],
        labels: Sequence[str | None] | None = None,
        *,
        text_labels: Sequence[str | None] | None = None,
    ) -> list[float]:
        """CLIPScore of each ``(images[i], texts[i])`` pair.

        ``labels`` name the images (decode errors) and, unless ``text_labels`` are given,
        also the prompts (truncation warnings).
        """
        import torch  # noqa: PLC0415

        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        if not images:
            return []
        txt = self.embed_texts(texts, text_labels if text_labels is not None else labels)
        img = self.embed_images(images, labels)
        with torch.inference_mode():
            sims = (img * txt).sum(dim=-1)
        return [float(v) for v in sims.cpu().tolist()]

    def score_one(self, image: ImageLike, text: str, label: str | None = None) -> float:
        """CLIPScore of one image and one prompt."""
        return self.score([image], [text], None if label is None else [label])[0]

    def reference_score(self, image: ImageLike, text: str) -> float:
        """The libraries' own path, one image at a time, strict fp32: PIL image through
        open_clip's ``preprocess``, ``encode_image`` / ``encode_text``, no cache. Slow; for
        checking the fast path and for the benchmark's naive column."""
        from PIL import Image  # noqa: PLC0415

        img = to_uint8_chw(image).cpu()
        pil = Image.fromarray(img.permute(1, 2, 0).numpy())
        with precision_scope(self.device, "fp32"):
            x = self.reference_transform(pil).unsqueeze(0).to(self.device)
            ie = self.network.encode_image(x)
            te = self.network.encode_text(self.tokenizer([text]).to(self.device))
            ie = ie / ie.norm(dim=-1, keepdim=True)
            te = te / te.norm(dim=-1, keepdim=True)
            return float((ie * te).sum())

    def warmup(self) -> None:
        """Run one tiny batch so CUDA context, cuBLAS and kernels are ready."""
        import torch  # noqa: PLC0415

        img = torch.zeros((3, self.image_size + 32, self.image_size + 16), dtype=torch.uint8)
        self.embed_images([img])
        with precision_scope(self.device, self.precision):
            self.network.encode_text(self.tokenizer([""]).to(self.device))


# --------------------------------------------------------------------------- LPIPS


def _load_trunk(network: Any, path: Path, net: str) -> None:
    """Load torchvision ImageNet weights (``features.N.*``) into ``lpips.LPIPS.net``'s slices."""
    import torch  # noqa: PLC0415

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ScorerError(
            f"cannot read LPIPS trunk weights {path}: {type(exc).__name__}: {exc}",
            hint=f"the file must be torchvision's {net} state dict "
            f"({LPIPS_TRUNK_URLS[net].rsplit('/', 1)[-1]})",
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ScorerError(f"{path} does not hold a state dict (found {type(state).__name__})")
    mapped: dict[str, Any] = {}
    for slice_name, block in network.net.named_children():
        for idx, _ in block.named_children():
            for pname in ("weight", "bias"):
                key = f"features.{idx}.{pname}"
                if key in state:
                    mapped[f"{slice_name}.{idx}.{pname}"] = state[key]
    try:
        network.net.load_state_dict(mapped, strict=True)
    except RuntimeError as exc:
        raise ScorerError(
            f"{path} is not torchvision's {net} ImageNet state dict: {exc}",
            hint=f"expected the file {LPIPS_TRUNK_URLS[net].rsplit('/', 1)[-1]} "
            f"from {LPIPS_TRUNK_URLS[net]}",
        ) from exc


class LPIPSScorer:
    """LPIPS distance with ``lpips.LPIPS`` held on one device.

    Build it with :meth:`load`; then :meth:`distance` (batched pairs) or
    :meth:`distance_one`. 0 means identical; the study's quantized configs sit at 0.17-0.31
    from the BF16 reference.

    Attributes: ``name`` ("LPIPS"), ``higher_is_better`` (False), ``model`` (trunk:
    ``alex`` or ``vgg``), ``pretrained`` (trunk weights file name, or ``"random"``),
    ``device``, ``precision``, ``channels_last``, ``network`` (the ``lpips.LPIPS`` module),
    ``weights_path``, ``weights_identity`` (sha256 of the trunk weights file, or
    ``"random"``), ``random_weights``. The linear calibration layers are always the ones the
    ``lpips`` package ships (v0.1).
    """

    name: ClassVar[str] = "LPIPS"
    higher_is_better: ClassVar[bool] = False

    def __init__(
        self,
        *,
        network: Any,
        model: str,
        pretrained: str,
        device: torch.device,
        weights_path: Path | None,
        weights_identity: str,
        precision: str = DEFAULT_PRECISION,
        batch_size: int = 16,
        channels_last: bool | None = None,
    ) -> None:
        import torch  # noqa: PLC0415

        if precision not in PRECISIONS:
            raise ScorerError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        if batch_size < 1:
            raise ScorerError(f"batch_size must be >= 1, got {batch_size}")
        self.network = network
        self.model = model
        self.pretrained = pretrained
        self.device = device
        self.weights_path = weights_path
        self.weights_identity = weights_identity
        self.random_weights = weights_identity == RANDOM
        self.precision = precision
        self.batch_size = batch_size
        self.channels_last = True if channels_last is None else channels_last
        if self.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)

    @classmethod
    def load(
        cls,
        net: str = DEFAULT_LPIPS_NET,
        *,
        weights: str | os.PathLike[str] | None = None,
        device: str | torch.device = "auto",
        random_weights: bool = False,
        precision: str = DEFAULT_PRECISION,
        batch_size: int = 16,
        channels_last: bool | None = None,
        download: bool = False,
    ) -> LPIPSScorer:
        """Build ``lpips.LPIPS(net=net)`` once onto ``device``, eval and inference mode.

        The trunk's ImageNet weights come from ``weights`` (a file) or torchvision's hub
        cache (see :func:`resolve_lpips_weights`); they are loaded without any network
        access. ``random_weights=True`` leaves the trunk randomly initialised from a fixed
        seed (``lpips.LPIPS(pnet_rand=True)``): dry runs and tests only.
        ``channels_last=None`` means on (measured faster on an H100 and on a 16-core CPU).
        """
        lpips = _import("lpips")
        dev = resolve_device(device)
        if net not in LPIPS_TRUNK_URLS:
            raise ScorerError(
                f"LPIPS net {net!r} is not supported",
                hint=f"use one of {', '.join(LPIPS_TRUNK_URLS)}",
            )
        resolved = (
            None if random_weights else resolve_lpips_weights(net, weights, download=download)
        )
        network = _seeded(
            _build_quietly, lpips.LPIPS, net=net, pretrained=True, pnet_rand=True, verbose=False
        )
        if resolved is not None:
            _load_trunk(network, resolved.path, net)
        network = network.to(dev).eval()
        for p in network.parameters():
            p.requires_grad_(False)
        if resolved is None:
            pretrained = RANDOM
        elif resolved.source == "file":
            pretrained = str(resolved.path)
        else:
            pretrained = resolved.path.name
        return cls(
            network=network,
            model=net,
            pretrained=pretrained,
            device=dev,
            weights_path=None if resolved is None else resolved.path,
            weights_identity=RANDOM if resolved is None else sha256_file(resolved.path),
            precision=precision,
            batch_size=batch_size,
            channels_last=channels_last,
        )

    def describe(self) -> str:
        """One line for report headers; says RANDOM WEIGHTS when they are."""
        if self.random_weights:
            weights = RANDOM_WEIGHTS_BANNER
        else:
            weights = f"{self.pretrained} (sha256 {self.weights_identity[:12]})"
        return (
            f"LPIPS: lpips {self.model} / {weights}, {self.device}, "
            f"{_precision_label(self.precision, self.device)}"
        )

    def info(self) -> dict[str, Any]:
        """Plain facts for run files and reports."""
        return {
            "name": self.name,
            "model": self.model,
            "pretrained": self.pretrained,
            "weights_identity": self.weights_identity,
            "random_weights": self.random_weights,
            "device": str(self.device),
            "precision": self.precision,
            "higher_is_better": self.higher_is_better,
        }

    def __repr__(self) -> str:
        return f"<LPIPSScorer {self.describe()}>"

    def to_input(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Same-sized uint8 ``(3, H, W)`` images -> ``(N, 3, H, W)`` float32 in [-1, 1] on the
        device, computed as ``lpips.im2tensor`` does (``x / 127.5 - 1`` in float64, then
        float32)."""
        import torch  # noqa: PLC0415

        batch = _stack_on(self.device, images)
        x = (batch.to(torch.float64) / 127.5 - 1.0).to(torch.float32)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def distance(
        self,
        images_a: Sequence[ImageLike],
        images_b: Sequence[ImageLike],
        labels: Sequence[tuple[str, str]] | None = None,
    ) -> list[float]:
        """LPIPS distance of each pair ``(images_a[i], images_b[i])``.

        ``labels[i]`` names the two images of pair ``i`` in errors; a pair of different sizes
        raises :class:`ImageSizeMismatchError` naming both.
        """
        if len(images_a) != len(images_b):
            raise ValueError(f"{len(images_a)} images against {len(images_b)}")
        if labels is not None and len(labels) != len(images_a):
            raise ValueError(f"{len(labels)} label pairs for {len(images_a)} pairs")
        out: list[float] = []
        for start in range(0, len(images_a), self.batch_size):
            stop = start + self.batch_size
            lab = None if labels is None else labels[start:stop]
            out.extend(self._distance_chunk(images_a[start:stop], images_b[start:stop], lab))
        return out

    def _distance_chunk(
        self,
        images_a: Sequence[ImageLike],
        images_b: Sequence[ImageLike],
        labels: Sequence[tuple[str, str]] | None,
    ) -> list[float]:
        import torch  # noqa: PLC0415

        n = len(images_a)
        la: list[str | None] = [p[0] for p in labels] if labels is not None else [None] * n
        lb: list[str | None] = [p[1] for p in labels] if labels is not None else [None] * n
        both = to_uint8_chw_many([*images_a, *images_b], [*la, *lb])
        a, b = both[:n], both[n:]
        groups: dict[tuple[int, int], list[int]] = {}
        for i in range(n):
            sa, sb = tuple(a[i].shape[1:]), tuple(b[i].shape[1:])
            if sa != sb:
                name_a = la[i] or f"image {i} of the first set"
                name_b = lb[i] or f"image {i} of the second set"
                raise ImageSizeMismatchError(
                    f"LPIPS cannot compare {name_a} ({sa[1]}x{sa[0]}) with {name_b} "
                    f"({sb[1]}x{sb[0]}): the sizes differ"
                )
            groups.setdefault((int(sa[0]), int(sa[1])), []).append(i)
        result = torch.empty(n, dtype=torch.float32, device=self.device)
        with precision_scope(self.device, self.precision):
            for idxs in groups.values():
                xa = self.to_input([a[i] for i in idxs])
                xb = self.to_input([b[i] for i in idxs])
                d = self.network(xa, xb).float().reshape(-1)
                if len(idxs) == n:
                    result = d
                else:
                    result[torch.as_tensor(idxs, device=self.device)] = d
        return [float(v) for v in result.cpu().tolist()]

    def distance_one(
        self,
        image_a: ImageLike,
        image_b: ImageLike,
        label_a: str | None = None,
        label_b: str | None = None,
    ) -> float:
        """LPIPS distance of one pair."""
        labels = None
        if label_a is not None or label_b is not None:
            labels = [(label_a or "the first image", label_b or "the second image")]
        return self.distance([image_a], [image_b], labels)[0]

    def reference_distance(self, image_a: ImageLike, image_b: ImageLike) -> float:
        """The library's own path for one pair, strict fp32: ``lpips.im2tensor`` on the HWC
        arrays, then ``lpips.LPIPS.forward``. For checking and the benchmark's naive path."""
        lpips = _import("lpips")
        a = to_uint8_chw(image_a).cpu().permute(1, 2, 0).numpy()
        b = to_uint8_chw(image_b).cpu().permute(1, 2, 0).numpy()
        with precision_scope(self.device, "fp32"):
            ta = lpips.im2tensor(a).to(self.device)
            tb = lpips.im2tensor(b).to(self.device)
            return float(self.network(ta, tb).reshape(()))

    def warmup(self) -> None:
        """Run one tiny pair so CUDA context, cuDNN and kernels are ready."""
        import torch  # noqa: PLC0415

        img = torch.zeros((3, 64, 64), dtype=torch.uint8)
        self.distance([img], [img])


def _stack_on(device: torch.device, images: Sequence[torch.Tensor]) -> torch.Tensor:
    """Stack ``(3, H, W)`` images into ``(N, 3, H, W)`` on ``device``: each image moves on
    its own (no host-side copy into a batch; images already there do not move at all)."""
    import torch  # noqa: PLC0415

    moved = [img.to(device, non_blocking=True) for img in images]
    return moved[0][None] if len(moved) == 1 else torch.stack(moved)


def _precision_label(precision: str, device: torch.device) -> str:
    if precision == "tf32":
        return "fp32 (TF32 allowed)" if device.type == "cuda" else "fp32"
    if precision == "fp32":
        return "fp32 (strict, no TF32)" if device.type == "cuda" else "fp32"
    return "bf16 autocast"
