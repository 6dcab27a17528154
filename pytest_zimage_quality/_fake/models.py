"""The fake's model folders: which files exist, how they change images, and their identity.

A file's *level* in [0, 1] says how far images drift from the reference when it is used
(BF16 files 0, an FP8 transformer about 0.15, NVFP4 about 0.3, an FP8 text encoder adds about
0.05); a *broken* file draws off-prompt images. ``/view_metadata`` serves a small metadata
dict per file whose values change when a test "replaces" the file, which is what a client can
use as model-file identity.

Each file also has a *size*, the VRAM it takes while loaded (``model_size``): what
``/system_stats`` reports as used is ``VRAM_BASELINE`` plus the sizes of the loaded files plus
``SAMPLING_BYTES_PER_IMAGE`` per image while a sampler runs, so a VRAM sampler sees the figure
rise with a load and differ between configs.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Mapping
from typing import Literal

from .render import Scene

__all__ = [
    "DEFAULT_MODELS",
    "SAMPLING_BYTES_PER_IMAGE",
    "VRAM_BASELINE",
    "ModelRegistry",
    "default_level",
    "model_size",
]

_GIB = 1 << 30
#: What the device holds before any model is loaded (CUDA context, torch's own buffers).
VRAM_BASELINE = _GIB // 2
#: The sampler's working set per image of the batch, held while a KSampler runs.
SAMPLING_BYTES_PER_IMAGE = _GIB
#: BF16 size of a file per model folder (Z-Image Turbo 6B: 12.3 GB; Qwen3 4B: 8.0 GB).
_FOLDER_BYTES = {
    "diffusion_models": 12_300_000_000,
    "unet": 12_300_000_000,
    "text_encoders": 8_000_000_000,
    "clip": 8_000_000_000,
    "vae": 335_000_000,
    "checkpoints": 6_900_000_000,
    "loras": 150_000_000,
}
_OTHER_BYTES = 1_000_000_000

#: The model files the example suite's four configs name.
DEFAULT_MODELS: Mapping[str, tuple[str, ...]] = {
    "diffusion_models": (
        "z_image_turbo_bf16.safetensors",
        "z_image_turbo_fp8_e4m3fn.safetensors",
        "z_image_turbo_nvfp4.safetensors",
    ),
    "text_encoders": ("qwen_3_4b.safetensors", "qwen_3_4b_fp8_mixed.safetensors"),
    "vae": ("ae.safetensors",),
}

BrokenStyle = Literal["off_prompt", "noise"]


def default_level(folder: str, filename: str) -> float:
    """Guess a file's quantization level from its name and folder."""
    name = filename.lower()
    text_encoder = folder in ("text_encoders", "clip")
    if "fp4" in name:
        return 0.1 if text_encoder else 0.3
    if "fp8" in name or "int8" in name or "e4m3" in name or "e5m2" in name:
        return 0.05 if text_encoder else 0.15
    if "q4" in name or "q5" in name or "q6" in name or "q8" in name:
        return 0.05 if text_encoder else 0.2
    return 0.0


def model_size(folder: str, filename: str) -> int:
    """Bytes a file takes in VRAM: its folder's BF16 size times a precision factor read from
    the name (FP4/NVFP4 0.3, Q4-Q6 0.35, FP8/INT8/Q8 0.5, anything else 1.0)."""
    name = filename.lower()
    if "fp4" in name:
        factor = 0.3
    elif any(tag in name for tag in ("q4", "q5", "q6")):
        factor = 0.35
    elif any(tag in name for tag in ("fp8", "int8", "e4m3", "e5m2", "q8")):
        factor = 0.5
    else:
        factor = 1.0
    return int(_FOLDER_BYTES.get(folder, _OTHER_BYTES) * factor)


class ModelRegistry:
    """Model folders plus levels, broken files, revisions and the currently loaded set."""

    def __init__(
        self,
        models: Mapping[str, Iterable[str]],
        levels: Mapping[str, float] | None = None,
        broken: Iterable[str] = (),
        broken_style: BrokenStyle = "off_prompt",
        sizes: Mapping[str, int] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._sizes = dict(sizes or {})
        self.folders: dict[str, list[str]] = {k: sorted(set(v)) for k, v in models.items()}
        self._levels = dict(levels or {})
        self._broken = set(broken)
        self.broken_style: BrokenStyle = broken_style
        self._revisions: dict[str, int] = {}
        self.loaded: frozenset[str] = frozenset()

    # -- folders -------------------------------------------------------------------------------

    def add(self, folder: str, filename: str) -> None:
        with self._lock:
            files = self.folders.setdefault(folder, [])
            if filename not in files:
                files.append(filename)
                files.sort()

    def remove(self, folder: str, filename: str) -> None:
        with self._lock:
            files = self.folders.get(folder, [])
            if filename in files:
                files.remove(filename)

    def folder_of(self, filename: str) -> str | None:
        with self._lock:
            for folder, files in self.folders.items():
                if filename in files:
                    return folder
        return None

    def snapshot(self) -> dict[str, list[str]]:
        with self._lock:
            return {folder: list(files) for folder, files in self.folders.items()}

    # -- identity ------------------------------------------------------------------------------

    def replace(self, filename: str, level: float | None = None) -> int:
        """Pretend the file's bytes changed; returns its new revision."""
        with self._lock:
            if self.folder_of(filename) is None:
                raise KeyError(f"no model file named {filename!r} in any folder")
            self._revisions[filename] = self._revisions.get(filename, 0) + 1
            if level is not None:
                self._levels[filename] = level
            return self._revisions[filename]

    def set_broken(self, filename: str, broken: bool = True) -> None:
        with self._lock:
            if broken:
                self._broken.add(filename)
            else:
                self._broken.discard(filename)

    def revision(self, filename: str) -> int:
        with self._lock:
            return self._revisions.get(filename, 0)

    def metadata(self, folder: str, filename: str) -> dict[str, str] | None:
        """``/view_metadata/{folder}?filename=``: a safetensors-style ``__metadata__`` dict."""
        with self._lock:
            if filename not in self.folders.get(folder, []):
                return None
            revision = self._revisions.get(filename, 0)
            digest = hashlib.sha256(f"{folder}/{filename}#{revision}".encode()).hexdigest()
            return {
                "format": "pt",
                "modelspec.title": filename.rsplit(".", 1)[0],
                "fake_comfyui.revision": str(revision),
                "fake_comfyui.sha256": digest,
            }

    # -- VRAM ----------------------------------------------------------------------------------

    def size(self, filename: str) -> int:
        """The file's VRAM size: ``sizes=`` if given, else ``model_size`` of its folder."""
        with self._lock:
            if filename in self._sizes:
                return int(self._sizes[filename])
            return model_size(self.folder_of(filename) or "", filename)

    def loaded_bytes(self) -> int:
        """VRAM taken by the loaded model files."""
        return sum(self.size(f) for f in self.loaded)

    # -- rendering -----------------------------------------------------------------------------

    def level(self, filename: str) -> float:
        with self._lock:
            if filename in self._levels:
                return float(self._levels[filename])
            return default_level(self.folder_of(filename) or "", filename)

    def scene(self, text: str, seed: int, width: int, height: int, files: tuple[str, ...]) -> Scene:
        with self._lock:
            broken = sorted(f for f in files if f in self._broken)
            perturbing = sorted(f for f in files if self.level(f) > 0.0)
            level = min(1.0, sum(self.level(f) for f in files))
            key = "|".join(f"{f}#{self._revisions.get(f, 0)}" for f in perturbing)
            if any(self._revisions.get(f, 0) for f in files):
                # a replaced file draws slightly differently even at level 0
                key += "|" + "|".join(f"{f}#{self._revisions.get(f, 0)}" for f in sorted(files))
                level = max(level, 0.02)
        if broken:
            if self.broken_style == "noise":
                return Scene(text, seed, width, height, perturb_key="|".join(broken), noise=True)
            return Scene(text, seed, width, height, off_prompt=f"off-prompt scene ({broken[0]})")
        return Scene(text, seed, width, height, level=level, perturb_key=key)
