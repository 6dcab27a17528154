"""What each supported node class computes, in miniature.

Values flowing between nodes are small records (which model files a MODEL came from, which
text a CONDITIONING holds, ...) rather than tensors; pixels are produced lazily, only when a
save node needs them. Time, progress, model loads, files and faults are the executor's
business and reach a node through ``NodeContext``.
"""

from __future__ import annotations

import math
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from .nodes import BUILTIN_VAES
from .render import Scene, encode_png, render_scene, solid_image

__all__ = [
    "ClipValue",
    "Conditioning",
    "ImageBatch",
    "Interrupted",
    "Latent",
    "ModelValue",
    "NodeContext",
    "NodeFailure",
    "VaeValue",
    "is_changed",
    "run_node",
]


class Interrupted(Exception):
    """POST /interrupt landed at a node boundary or a progress tick."""


class NodeFailure(Exception):
    """A node raised (an injected fault): reported as ``execution_error``."""

    def __init__(self, exception_type: str, message: str, tips: str = "") -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.message = message
        #: ComfyUI's hint appended after the message (its OOM tips)
        self.tips = tips


@dataclass(frozen=True)
class ModelValue:
    files: tuple[str, ...]

    def __str__(self) -> str:
        return f"<comfy.model_patcher.ModelPatcher object ({', '.join(self.files)})>"


@dataclass(frozen=True)
class ClipValue:
    files: tuple[str, ...]

    def __str__(self) -> str:
        return f"<comfy.sd.CLIP object ({', '.join(self.files)})>"


@dataclass(frozen=True)
class VaeValue:
    name: str
    files: tuple[str, ...]

    def __str__(self) -> str:
        return f"<comfy.sd.VAE object ({self.name})>"


@dataclass(frozen=True)
class Conditioning:
    text: str
    files: tuple[str, ...]
    zero: bool = False


@dataclass(frozen=True)
class ImageBatch:
    """``count`` images of ``width`` x ``height``; ``pixels(i)`` renders image ``i``."""

    width: int
    height: int
    count: int
    pixels: Callable[[int], np.ndarray]


@dataclass(frozen=True)
class Latent:
    width: int
    height: int
    batch: int
    #: sampled: (prompt text, seed, model files); None for empty or encoded latents
    sampled: tuple[str, int, tuple[str, ...]] | None = None
    #: encoded from pixels (VAEEncode)
    images: ImageBatch | None = None


class NodeContext(Protocol):
    """What the executor offers a running node."""

    node_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]

    def progress(self, value: int, total: int, preview: bytes | None = None) -> None:
        """Report progress (raises ``Interrupted`` first if an interrupt is pending)."""

    def sample(self, steps: int, images: int) -> None:
        """Spend the simulated sampling time, ticking progress ``1..steps``."""

    def pixel_work(self, pixels: int, ticks: int = 0) -> None:
        """Spend the simulated time of VAE work on ``pixels``; with ``ticks``, report progress
        ``1..ticks`` and honour interrupts at each tick (else the op is uninterruptible)."""

    def scene(self, text: str, seed: int, width: int, height: int, files: tuple[str, ...]) -> Scene:
        """The scene these model files would draw (quantization level, broken files)."""

    def save_images(
        self, kind: Literal["output", "temp"], prefix: str, images: ImageBatch, *, metadata: bool
    ) -> list[dict[str, str]]:
        """Write PNGs like SaveImage/PreviewImage and return their UI entries."""

    def temp_prefix(self) -> str:
        """PreviewImage's per-node ``_temp_xxxxx`` suffix."""


NodeResult = tuple[tuple[Any, ...], dict[str, Any] | None]


def _uniq(*groups: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for item in group:
            seen.setdefault(item, None)
    return tuple(seen)


def _tiled_steps(width: int, height: int, tile_x: int, tile_y: int, overlap: int) -> int:
    rows = 1 if height <= tile_y else math.ceil((height - overlap) / (tile_y - overlap))
    cols = 1 if width <= tile_x else math.ceil((width - overlap) / (tile_x - overlap))
    return rows * cols


def _decode(ctx: NodeContext, samples: Latent, vae: VaeValue) -> ImageBatch:
    if samples.images is not None:
        return samples.images
    scale = 1 if vae.name == "pixel_space" else 8
    width, height = samples.width * scale, samples.height * scale
    if samples.sampled is None:  # decoding an empty latent gives a flat grey
        gray = solid_image(width, height, 0x808080)
        return ImageBatch(width, height, samples.batch, lambda _i: gray)
    text, seed, files = samples.sampled
    scene = ctx.scene(text, seed, width, height, _uniq(files, vae.files))
    return ImageBatch(width, height, samples.batch, lambda i: render_scene(scene, i))


def _latent_of(images: ImageBatch, vae: VaeValue) -> Latent:
    scale = 1 if vae.name == "pixel_space" else 8
    return Latent(images.width // scale, images.height // scale, images.count, images=images)


def _empty_latent(inputs: dict[str, Any], scale: int = 8) -> Latent:
    return Latent(inputs["width"] // scale, inputs["height"] // scale, inputs["batch_size"])


def run_node(class_type: str, inputs: dict[str, Any], ctx: NodeContext) -> NodeResult:
    """Run one node; ``inputs`` holds literals and upstream values. Returns (outputs, ui)."""
    if class_type == "UNETLoader":
        return (ModelValue((inputs["unet_name"],)),), None
    if class_type == "CLIPLoader":
        return (ClipValue((inputs["clip_name"],)),), None
    if class_type == "VAELoader":
        name = inputs["vae_name"]
        return (VaeValue(name, () if name in BUILTIN_VAES else (name,)),), None
    if class_type == "ModelSamplingAuraFlow":
        return (inputs["model"],), None
    if class_type == "CLIPTextEncode":
        return (Conditioning(inputs["text"], inputs["clip"].files),), None
    if class_type == "ConditioningZeroOut":
        cond: Conditioning = inputs["conditioning"]
        return (Conditioning("", cond.files, zero=True),), None
    if class_type in ("EmptySD3LatentImage", "EmptyLatentImage"):
        return (_empty_latent(inputs),), None
    if class_type == "EmptyImage":
        width, height, color = inputs["width"], inputs["height"], inputs["color"]
        image = solid_image(width, height, color)
        return (ImageBatch(width, height, inputs["batch_size"], lambda _i: image),), None
    if class_type == "KSampler":
        latent: Latent = inputs["latent_image"]
        positive: Conditioning = inputs["positive"]
        negative: Conditioning = inputs["negative"]
        model: ModelValue = inputs["model"]
        ctx.sample(inputs["steps"], latent.batch)
        files = _uniq(model.files, positive.files, negative.files)
        sampled = (positive.text, int(inputs["seed"]), files)
        return (Latent(latent.width, latent.height, latent.batch, sampled=sampled),), None
    if class_type == "VAEEncode":
        pixels: ImageBatch = inputs["pixels"]
        # an encode is one quick op next to the tiled decode's passes (recording 09)
        ctx.pixel_work(pixels.width * pixels.height * pixels.count // 100)
        return (_latent_of(pixels, inputs["vae"]),), None
    if class_type == "VAEDecode":
        decoded = _decode(ctx, inputs["samples"], inputs["vae"])
        ctx.pixel_work(decoded.width * decoded.height * decoded.count)
        return (decoded,), None
    if class_type == "VAEDecodeTiled":
        samples: Latent = inputs["samples"]
        vae: VaeValue = inputs["vae"]
        scale = 1 if vae.name == "pixel_space" else 8
        tile = max(1, inputs["tile_size"] // scale)
        overlap = inputs["overlap"] // scale
        if inputs["tile_size"] < inputs["overlap"] * 4:
            overlap = tile // 4
        w, h = samples.width, samples.height
        total = samples.batch * (
            _tiled_steps(w, h, tile, tile, overlap)
            + _tiled_steps(w, h, max(1, tile // 2), tile * 2, overlap)
            + _tiled_steps(w, h, tile * 2, max(1, tile // 2), overlap)
        )
        decoded = _decode(ctx, samples, vae)
        ctx.pixel_work(decoded.width * decoded.height * decoded.count, total)
        return (decoded,), None
    if class_type == "SaveImage":
        images = ctx.save_images(
            "output", inputs["filename_prefix"], inputs["images"], metadata=True
        )
        return (), {"images": images}
    if class_type == "PreviewImage":
        prefix = "ComfyUI" + ctx.temp_prefix()
        images = ctx.save_images("temp", prefix, inputs["images"], metadata=True)
        return (), {"images": images}
    if class_type == "SaveImageWebsocket":
        batch: ImageBatch = inputs["images"]
        for index in range(batch.count):
            ctx.progress(index, batch.count, preview=encode_png(batch.pixels(index)))
        return (), None
    raise NotImplementedError(f"FakeComfyUI cannot run {class_type}")


def is_changed(class_type: str) -> Any:
    """``IS_CHANGED``: SaveImageWebsocket reruns every time (it returns time.time())."""
    if class_type == "SaveImageWebsocket":
        return random.random()
    return None


def random_temp_suffix(rng: random.Random) -> str:
    return "_temp_" + "".join(rng.choice(string.ascii_lowercase) for _ in range(5))
