"""PIL-exact resizing on the device: the pixels open_clip's ``preprocess`` would have produced.

open_clip preprocesses with torchvision's ``Resize`` on a PIL image (Pillow's 8-bit
resampling) and a centre crop. :class:`PILExactResize` does the same as two matrix products
on the device, with Pillow's fixed-point coefficients and its rounding after each pass, so a
batched GPU path sees exactly the pixels of the one-image-at-a-time PIL path.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["INTERPOLATIONS", "RESIZE_MODES", "PILExactResize"]

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


#: The resampling filters reproduced here.
INTERPOLATIONS = tuple(_FILTERS)
#: open_clip's ``resize_mode`` values reproduced here: shortest side then centre crop, or squash.
RESIZE_MODES = ("shortest", "squash")


class PILExactResize:
    """``(B, 3, H, W)`` uint8 on a device -> ``(B, 3, S, S)`` float64 holding the exact 8-bit
    pixels of PIL's resize + torchvision's centre crop (integers 0..255).

    The resampling matrices are built once per (input size, output size, crop) and kept on
    the device.
    """

    def __init__(
        self, size: int, interpolation: str, resize_mode: str, device: torch.device
    ) -> None:
        if interpolation not in INTERPOLATIONS or resize_mode not in RESIZE_MODES:
            raise ValueError(f"cannot reproduce {interpolation} / {resize_mode} resizing")
        self.size = size
        self.interpolation = interpolation
        self.resize_mode = resize_mode
        self.device = device
        self._matrices: dict[tuple[int, int, int, int], torch.Tensor] = {}

    def _matrix(self, in_size: int, out_size: int, start: int, stop: int) -> torch.Tensor:
        import torch  # noqa: PLC0415

        key = (in_size, out_size, start, stop)
        m = self._matrices.get(key)
        if m is None:
            rows = _pil_coefficients(in_size, out_size, self.interpolation, start, stop)
            m = torch.tensor(rows, dtype=torch.float64, device=self.device)
            self._matrices[key] = m
        return m

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch  # noqa: PLC0415

        s = self.size
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
