"""PNG checks for images fetched from ComfyUI: full decode, and the embedded prompt graph.

ComfyUI's SaveImage writes the API graph it ran as a tEXt chunk ``prompt`` (unless the
server runs with ``--disable-metadata``). :func:`read_png` decodes every pixel with
Pillow and returns the text chunks; :func:`prompt_differences` compares that chunk with the
graph the client submitted. PIL errors are translated here into :class:`ImageDecodeError`.

Imports neither pytest nor torch.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ..errors import ImageDecodeError

__all__ = ["DecodedPNG", "png_size", "prompt_differences", "read_png", "requested_size"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class DecodedPNG:
    """What a successful decode found: size, mode and the text chunks (tEXt/zTXt/iTXt)."""

    width: int
    height: int
    mode: str
    text: Mapping[str, str]


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR header, without decoding; None if there is none."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def requested_size(graph: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """The largest literal ``width`` x ``height`` a node of ``graph`` asks for (the empty
    latent's size in a text-to-image graph), or None when no node names one."""
    best: tuple[int, int] | None = None
    for node in (graph or {}).values():
        inputs = node.get("inputs") if isinstance(node, Mapping) else None
        if not isinstance(inputs, Mapping):
            continue
        w, h = inputs.get("width"), inputs.get("height")
        if not (isinstance(w, int) and isinstance(h, int)) or isinstance(w, bool) or w <= 0:
            continue
        if h > 0 and (best is None or w * h > best[0] * best[1]):
            best = (w, h)
    return best


def read_png(data: bytes, *, what: str, max_pixels: int | None = None) -> DecodedPNG:
    """Decode ``data`` fully as a PNG; ``what`` names the image in the error message.

    Raises :class:`ImageDecodeError` for anything that is not a complete, valid PNG
    (wrong signature, truncated stream, bad CRC, undecodable pixels), and, before any pixel
    is decoded, for an image of more than ``max_pixels`` pixels (a decompression bomb: a
    few KB that decode to gigabytes).
    """
    if not data:
        raise ImageDecodeError(f"{what}: the reply is empty (0 bytes), not a PNG")
    if not data.startswith(_PNG_SIGNATURE):
        head = data[:16]
        raise ImageDecodeError(f"{what}: not a PNG (first bytes {head!r}, {len(data)} bytes)")
    size = png_size(data)
    if size is None:
        raise ImageDecodeError(f"{what}: the PNG has no IHDR header ({len(data)} bytes)")
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        raise ImageDecodeError(
            f"{what}: the PNG is {size[0]}x{size[1]} pixels, more than the {max_pixels:,} "
            "the graph's width x height allows; refused before decoding",
            hint="the server sent another image than the one asked for (or a decompression "
            "bomb); check the workflow's image size and the server",
        )
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if max_pixels is not None and probe.size[0] * probe.size[1] > max_pixels:
                raise ImageDecodeError(f"{what}: the PNG is {probe.size}, over {max_pixels:,}")
            probe.verify()  # chunk structure and CRCs
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # every pixel
            if image.format != "PNG":
                raise ImageDecodeError(f"{what}: decoded as {image.format}, expected PNG")
            text = {str(k): str(v) for k, v in getattr(image, "text", {}).items()}
            return DecodedPNG(image.width, image.height, image.mode, text)
    except ImageDecodeError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise ImageDecodeError(
            f"{what}: the PNG does not decode ({type(exc).__name__}: {exc}; {len(data)} bytes)"
        ) from exc


def _strip(graph: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a graph that determine the image: class_type and inputs per node."""
    out: dict[str, Any] = {}
    for node_id, node in graph.items():
        if isinstance(node, Mapping):
            out[str(node_id)] = {
                "class_type": node.get("class_type"),
                "inputs": dict(node.get("inputs", {}) or {}),
            }
        else:
            out[str(node_id)] = node
    return out


def prompt_differences(
    embedded: str, expected: Mapping[str, Any], *, limit: int = 5
) -> list[str] | None:
    """Compare the PNG's ``prompt`` chunk with the submitted graph.

    Returns ``None`` when the chunk is not JSON, else a list of readable differences
    (empty when equal). ``_meta`` titles are ignored: the server caches by inputs, so a
    replayed image may carry an earlier identical graph with other titles. Numbers compare
    by value (the server stores ``3`` as ``3.0`` for FLOAT inputs).
    """
    try:
        found = json.loads(embedded)
    except json.JSONDecodeError:
        return None
    if not isinstance(found, dict):
        return None
    want = _strip(json.loads(json.dumps(expected)))
    got = _strip(found)
    diffs: list[str] = []
    for node_id in sorted(set(want) | set(got), key=_id_order):
        if node_id not in got:
            diffs.append(f"node {node_id} ({want[node_id].get('class_type')}) is missing")
            continue
        if node_id not in want:
            diffs.append(f"node {node_id} ({got[node_id].get('class_type')}) was not submitted")
            continue
        a, b = want[node_id], got[node_id]
        if not isinstance(a, dict) or not isinstance(b, dict):
            if a != b:
                diffs.append(f"node {node_id}: submitted {a!r}, image has {b!r}")
            continue
        if a.get("class_type") != b.get("class_type"):
            diffs.append(
                f"node {node_id}: class {a.get('class_type')!r} submitted, "
                f"image has {b.get('class_type')!r}"
            )
            continue
        ia, ib = a["inputs"], b["inputs"]
        for name in sorted(set(ia) | set(ib)):
            if ia.get(name, _MISSING) != ib.get(name, _MISSING):
                diffs.append(
                    f"node {node_id} ({a.get('class_type')}) input {name}: submitted "
                    f"{_short(ia.get(name, _MISSING))}, image has {_short(ib.get(name, _MISSING))}"
                )
    if len(diffs) > limit:
        diffs = [*diffs[:limit], f"... and {len(diffs) - limit} more"]
    return diffs


class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


_MISSING: Any = _Missing()


def _short(value: object, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _id_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 30, node_id)
