"""Weights resolved offline, never downloaded implicitly.

open_clip tags are looked up in the Hugging Face cache (or open_clip's URL cache), the LPIPS
trunk in torchvision's hub cache (``$TORCH_HOME/hub/checkpoints``), or both come from a file
the user names. When a file is missing, :class:`~pytest_zimage_quality.WeightsNotFoundError`
names it, says where it was looked for and gives the command that fetches it; ``download=True``
is the only way to reach the network. :func:`sha256_file` gives the identity a record keeps.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ScorerError, WeightsNotFoundError
from ._defaults import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_PRETRAINED,
    DEFAULT_LPIPS_NET,
    RANDOM_WEIGHTS_BANNER,
)
from ._runtime import import_optional

__all__ = [
    "LPIPS_TRUNK_URLS",
    "ResolvedWeights",
    "resolve_clip_weights",
    "resolve_lpips_weights",
    "sha256_file",
]

#: The ImageNet weights torchvision serves for LPIPS' trunks (what ``lpips`` loads through
#: ``torchvision.models.alexnet(pretrained=True)`` / ``vgg16(pretrained=True)``).
LPIPS_TRUNK_URLS = {
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
}

_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors", ".ckpt", ".npz")
_HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
_HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"

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
    open_clip = import_optional("open_clip")
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
    open_clip = import_optional("open_clip")
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
    hub = import_optional("huggingface_hub")
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
        open_clip = import_optional("open_clip")
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
