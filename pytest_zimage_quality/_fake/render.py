"""Deterministic, cheap stand-ins for generated images.

A scene is drawn on a small grid from the prompt text (palette and layout) and the seed
(jitter), then a smooth perturbation field scaled by the config's quantization level is added
and the grid is upscaled to the requested size. So images of one (prompt, seed) are identical
across level-0 configs, similar across quantized ones, and drift further as the level grows;
a "broken" model file draws another prompt's scene, or noise. The PNG encoder is a small
hand-written one (up filter + zlib level 1): Pillow's adaptive filtering costs several times
more, and a 1024x1024 image must stay well under 50 ms on one core.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["Scene", "encode_png", "render_scene", "solid_image"]

_GRID = 48  # cells across the longer side of the low-resolution field
_OWN = 0.15  # weight of the per-file-set drift next to the drift all quantized files share
_GRAIN = 0.08  # RMS of the fine perturbation at level 1, in [0, 1] intensity units


@dataclass(frozen=True)
class Scene:
    """Everything that decides one sampled image."""

    text: str
    seed: int
    width: int
    height: int
    #: perturbation level in [0, 1]: 0 for the reference (BF16) files.
    level: float = 0.0
    #: identity of the perturbing model files; changes the direction of the drift.
    perturb_key: str = ""
    #: a broken model file: render this prompt's scene instead of ``text``.
    off_prompt: str | None = None
    #: a broken model file that renders noise.
    noise: bool = False


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def _grid_size(width: int, height: int) -> tuple[int, int]:
    if width >= height:
        return _GRID, max(4, min(_GRID, round(_GRID * height / width)))
    return max(4, min(_GRID, round(_GRID * width / height))), _GRID


def _smooth_noise(rng: np.random.Generator, gw: int, gh: int) -> np.ndarray:
    coarse = rng.standard_normal((3, gh // 6 + 2, gw // 6 + 2)).astype(np.float32)
    channels = [
        np.asarray(Image.fromarray(plane).resize((gw, gh), Image.Resampling.BILINEAR))
        for plane in coarse
    ]
    field = np.stack(channels, axis=-1)
    rms = float(np.sqrt(np.mean(field**2))) or 1.0
    result: np.ndarray = field / rms
    return result


def _drift(text: str, seed: int, key: str, level: float, blobs: int) -> dict[str, np.ndarray]:
    """How a quantized model moves the scene: mostly a shared direction, partly per file set."""
    common = _rng("drift", text, seed)
    own = _rng("drift", text, seed, key)
    shape = {"palette": (6, 3), "centers": (blobs, 2), "radii": (blobs,)}
    return {
        name: level * (common.standard_normal(dims) + _OWN * own.standard_normal(dims))
        for name, dims in shape.items()
    }


def _field(scene: Scene, text: str, seed: int, gw: int, gh: int) -> np.ndarray:
    style = _rng("scene", text)
    palette = style.uniform(0.15, 0.85, size=(6, 3))
    blobs = int(style.integers(4, 7))
    centers = style.uniform(0.15, 0.85, size=(blobs, 2))
    radii = style.uniform(0.08, 0.22, size=blobs)
    jitter = _rng("seed", text, seed)
    centers = centers + jitter.normal(0.0, 0.15, size=centers.shape)
    radii = radii * jitter.uniform(0.7, 1.3, size=radii.shape)
    if scene.level > 0.0:
        drift = _drift(text, seed, scene.perturb_key, scene.level, blobs)
        palette = palette + 0.25 * drift["palette"]
        centers = centers + 0.12 * drift["centers"]
        radii = radii * np.exp(0.3 * drift["radii"])
    ys = np.linspace(0.0, 1.0, gh, dtype=np.float32)[:, None, None]
    xs = np.linspace(0.0, 1.0, gw, dtype=np.float32)[None, :, None]
    field = palette[0] * (1.0 - ys) + palette[1] * ys + 0.0 * xs
    for i in range(blobs):
        cx, cy = centers[i]
        weight = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2.0 * radii[i] ** 2))
        field = field * (1.0 - weight) + palette[2 + i % 4] * weight
    if scene.level > 0.0:
        noise = _smooth_noise(_rng("grain", text, seed), gw, gh)
        noise = noise + _OWN * _smooth_noise(_rng("grain", text, seed, scene.perturb_key), gw, gh)
        field = field + (_GRAIN * scene.level) * noise
    result: np.ndarray = field.astype(np.float32)
    return result


def render_scene(scene: Scene, index: int = 0) -> np.ndarray:
    """The ``index``-th image of a batch as an (height, width, 3) uint8 array."""
    seed = scene.seed + index
    if scene.noise:
        noise = _rng("noise", scene.perturb_key, seed).integers(0, 256, size=(64, 64, 3))
        small = Image.fromarray(noise.astype(np.uint8), mode="RGB")
        return np.asarray(small.resize((scene.width, scene.height), Image.Resampling.NEAREST))
    text = scene.text if scene.off_prompt is None else scene.off_prompt
    gw, gh = _grid_size(scene.width, scene.height)
    field = _field(scene, text, seed, gw, gh)
    small = Image.fromarray((np.clip(field, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), mode="RGB")
    return np.asarray(small.resize((scene.width, scene.height), Image.Resampling.BILINEAR))


def solid_image(width: int, height: int, color: int) -> np.ndarray:
    """An ``EmptyImage``: one 0xRRGGBB colour everywhere."""
    rgb = np.array([(color >> 16) & 0xFF, (color >> 8) & 0xFF, color & 0xFF], dtype=np.uint8)
    return np.broadcast_to(rgb, (height, width, 3))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels: np.ndarray, text: Mapping[str, str] | None = None) -> bytes:
    """An RGB PNG with one tEXt chunk per ``text`` item (latin-1, as PIL writes ASCII JSON)."""
    height, width = int(pixels.shape[0]), int(pixels.shape[1])
    rows = np.ascontiguousarray(pixels, dtype=np.uint8).reshape(height, width * 3)
    raw = np.empty((height, width * 3 + 1), dtype=np.uint8)
    raw[:, 0] = 2  # filter type "up" for every row; the first row's "up" is the row itself
    raw[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=raw[1:, 1:])
    parts = [
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
    ]
    for key, value in (text or {}).items():
        parts.append(_chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")))
    parts.append(_chunk(b"IDAT", zlib.compress(raw.tobytes(), 1)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
