"""Deterministic, cheap stand-ins for generated images.

A scene is drawn on a small grid from the prompt text (palette and layout) and the seed
(jitter), then a smooth perturbation field scaled by the config's quantization level is added
and the grid is upscaled to the requested size. So images of one (prompt, seed) are identical
across level-0 configs, similar across quantized ones, and drift further as the level grows;
a "broken" model file draws another prompt's scene, or noise. The PNG encoder is a small
hand-written one (up filter + zlib level 1): Pillow's adaptive filtering costs several times
more, and a 1024x1024 image must stay well under 50 ms on one core.

A prompt with quoted text (``sign reading "CLOSED FOR REPAIRS"``, see
:func:`~pytest_zimage_quality.text_accuracy.quoted_text`) gets that text drawn on a light
panel, legibly, so a real OCR model reads it back. As the level rises the letters degrade the
way a quantized model's lettering does: ``round(level * letters)`` of them become another
letter (a misspelling), and every glyph is rotated, shifted off the baseline and smeared in
proportion to the level. Text whose glyphs would be under 12 pixels (a sign on a 64² image)
is not drawn. Latin text uses the font Pillow ships (the same pixels on every
machine); CJK characters use a CJK font found on the machine (:func:`find_cjk_font`), and are
left out when there is none.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..text_accuracy import is_cjk, quoted_text

__all__ = ["Scene", "draw_text_panel", "encode_png", "find_cjk_font", "render_scene", "solid_image"]

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
    image = small.resize((scene.width, scene.height), Image.Resampling.BILINEAR)
    phrase = quoted_text(text) if scene.off_prompt is None else None
    if phrase:
        image = draw_text_panel(image, phrase, scene.level, key=(text, seed, scene.perturb_key))
    return np.asarray(image)


# --------------------------------------------------------------------------- text


# Where fonts live on Linux, macOS and Windows, and the file names of common CJK fonts.
_FONT_DIRS = (
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "/Library/Fonts",
    "/System/Library/Fonts",
    "~/Library/Fonts",
)
_CJK_FONT_NAMES = (
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJK-Bold.ttc",
    "NotoSerifCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansSC-Regular.otf",
    "NotoSansSC-Regular.ttf",
    "SourceHanSansSC-Regular.otf",
    "SourceHanSans-Regular.ttc",
    "wqy-zenhei.ttc",
    "wqy-microhei.ttc",
    "Hiragino Sans GB.ttc",
    "PingFang.ttc",
    "msyh.ttc",
    "simsun.ttc",
)
_PANEL = (236, 226, 200)
_MIN_GLYPH = 12  # pixels: smaller text is not drawn (below ~128² for a two-line sign)
_INK = (34, 26, 20)


@functools.lru_cache(maxsize=1)
def find_cjk_font() -> Path | None:
    """A font file with CJK glyphs on this machine (the first of a list of common ones,
    searched in the usual font folders), or ``None``."""
    dirs = [Path(d).expanduser() for d in _FONT_DIRS]
    if sys.platform == "win32":
        dirs.append(Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts")
    found: dict[str, Path] = {}
    for folder in dirs:
        if folder.is_dir():
            for path in folder.rglob("*"):
                if path.name in _CJK_FONT_NAMES and path.name not in found:
                    found[path.name] = path
    return next((found[name] for name in _CJK_FONT_NAMES if name in found), None)


@functools.lru_cache(maxsize=32)
def _font(size: int, cjk: bool) -> ImageFont.FreeTypeFont | None:
    if not cjk:
        font = ImageFont.load_default(size)
        return font if isinstance(font, ImageFont.FreeTypeFont) else None
    path = find_cjk_font()
    return None if path is None else ImageFont.truetype(str(path), size)


def _misspell(char: str, rng: np.random.Generator) -> str:
    """Another character of the same kind: what a misspelt glyph reads as."""
    for alphabet in ("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz", "0123456789"):
        if char in alphabet:
            others = alphabet.replace(char, "")
            return others[int(rng.integers(len(others)))]
    if is_cjk(char) and 0x4E00 <= ord(char) <= 0x9FFF:
        step = int(rng.integers(1, 40)) * (1 if rng.random() < 0.5 else -1)
        return chr(min(0x9FFF, max(0x4E00, ord(char) + step)))
    return ""  # punctuation and other scripts: the glyph is lost


def _lines(phrase: str) -> list[str]:
    """One line, or two split at the space nearest the middle when the text is long."""
    words = phrase.split()
    if len(phrase) <= 12 or len(words) < 2:
        return [" ".join(words)] if words else [phrase]
    best = min(range(1, len(words)), key=lambda i: abs(len(" ".join(words[:i])) - len(phrase) / 2))
    return [" ".join(words[:best]), " ".join(words[best:])]


def draw_text_panel(
    image: Image.Image, phrase: str, level: float, *, key: tuple[object, ...]
) -> Image.Image:
    """``image`` with ``phrase`` drawn on a light panel, degraded by ``level`` in [0, 1]
    (unchanged when the glyphs would be too small to read).

    ``key`` seeds which letters are misspelt and how glyphs move (the same key and level
    always draw the same pixels)."""
    width, height = image.size
    lines = _lines(phrase)
    rng = _rng("glyphs", *key)
    letters = [(r, c) for r, line in enumerate(lines) for c, ch in enumerate(line) if ch != " "]
    n_bad = min(len(letters), round(max(0.0, level) * len(letters)))
    bad = {letters[int(i)] for i in rng.permutation(len(letters))[:n_bad]} if n_bad else set()
    ref = 100
    longest = max(sum(_advance(ch, ref) for ch in line) for line in lines) or float(ref)
    size = int(min(0.8 * width * ref / longest, 0.5 * height / (1.35 * len(lines))))
    if size < _MIN_GLYPH:
        return image  # too small to be legible: a real model's text would not be either
    line_h = int(1.35 * size)
    pad = size // 2
    panel_w = int(min(width, max(_line_width(ln, size) for ln in lines) + 2 * pad))
    panel_h = min(height, line_h * len(lines) + 2 * pad)
    place = _rng("panel", key[0])
    x0 = int((width - panel_w) / 2)
    y0 = int(np.clip((height - panel_h) * place.uniform(0.35, 0.65), 0, height - panel_h))
    ink = Image.new("L", (panel_w, panel_h), 0)
    wobble = max(0.0, level)
    for r, line in enumerate(lines):
        x = (panel_w - _line_width(line, size)) / 2
        y = pad + r * line_h
        for c, ch in enumerate(line):
            advance = _advance(ch, size)
            if ch != " ":
                glyph = _misspell(ch, rng) if (r, c) in bad else ch
                angle = float(rng.normal(0.0, 60.0 * wobble))
                dy = float(rng.normal(0.0, 0.25 * wobble * size))
                dx = float(rng.normal(0.0, 0.08 * wobble * size))
                if glyph:
                    _stamp(ink, glyph, size, x + dx, y + dy, angle)
            x += advance
    if wobble > 0.0:
        ink = ink.filter(ImageFilter.GaussianBlur(0.05 * wobble * size))
    out = image.copy()
    panel = Image.new("RGB", (panel_w, panel_h), _PANEL)
    panel.paste(Image.new("RGB", (panel_w, panel_h), _INK), (0, 0), ink)
    out.paste(panel, (x0, y0))
    return out


def _advance(char: str, size: int) -> float:
    font = _font(size, is_cjk(char))
    return float(font.getlength(char)) if font is not None else 0.0


def _line_width(line: str, size: int) -> float:
    return sum(_advance(ch, size) for ch in line)


def _stamp(ink: Image.Image, glyph: str, size: int, x: float, y: float, angle: float) -> None:
    """Draw one glyph into the ink mask at (x, y), rotated by ``angle`` degrees."""
    font = _font(size, is_cjk(glyph))
    if font is None:
        return
    box = int(2 * size)
    tile = Image.new("L", (box, box), 0)
    ImageDraw.Draw(tile).text((box / 2, box / 2), glyph, fill=255, font=font, anchor="mm")
    if angle:
        tile = tile.rotate(angle, resample=Image.Resampling.BILINEAR)
    centre_x = x + _advance(glyph, size) / 2
    centre_y = y + size / 2
    left, top = round(centre_x - box / 2), round(centre_y - box / 2)
    ink.paste(Image.new("L", (box, box), 255), (left, top), tile)


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
