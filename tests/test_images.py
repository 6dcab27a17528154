"""PNG decoding, input conversion and the blank-image check (pytest_zimage_quality.images)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from pytest_zimage_quality import ImageDecodeError
from pytest_zimage_quality.images import (
    BLANK_MAX_STD,
    decode_png,
    decode_pngs,
    encode_png,
    is_blank,
    iter_decoded,
    pixel_std,
    submit_decode,
    to_uint8_chw,
    to_uint8_chw_many,
)


def _array(h: int = 48, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1)
    return np.clip(a + rng.integers(-12, 12, a.shape), 0, 255).astype(np.uint8)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _png16_rgb(arr16: np.ndarray) -> bytes:
    """A 16-bit RGB PNG written by hand (PIL cannot write one)."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _as_hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def test_decode_rgb_matches_pil() -> None:
    arr = _array()
    img = decode_png(_png(Image.fromarray(arr)))
    assert img.dtype == torch.uint8
    assert tuple(img.shape) == (3, 48, 64)
    np.testing.assert_array_equal(_as_hwc(img), arr)


@pytest.mark.parametrize("mode", ["RGBA", "L", "LA", "P"])
def test_decode_other_modes_like_pil_convert_rgb(mode: str) -> None:
    base = Image.fromarray(_array())
    if mode == "RGBA":
        src = base.copy()
        src.putalpha(Image.fromarray(_array(seed=3)[..., 0]))
    else:
        src = base.convert(mode)
    data = _png(src)
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    img = decode_png(data)
    assert tuple(img.shape) == (3, 48, 64)
    np.testing.assert_array_equal(_as_hwc(img), expected)


def test_decode_16bit_keeps_high_byte() -> None:
    arr8 = _array()
    arr16 = arr8.astype(np.uint16) * 256 + 0x7F
    img = decode_png(_png16_rgb(arr16))
    assert img.dtype == torch.uint8
    np.testing.assert_array_equal(_as_hwc(img), arr8)

    grey16 = arr8[..., 0].astype(np.uint16) * 256 + 0x11
    img = decode_png(_png(Image.fromarray(grey16)))
    assert img.dtype == torch.uint8
    for c in range(3):
        np.testing.assert_array_equal(img[c].numpy(), arr8[..., 0])


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty file"),
        (b"GIF89a" + b"\x00" * 64, "not a PNG"),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "does not decode"),
    ],
    ids=["empty", "gif", "garbage"],
)
def test_corrupt_bytes_raise_decode_error_naming_the_image(data: bytes, match: str) -> None:
    with pytest.raises(ImageDecodeError, match=match) as info:
        decode_png(data, label="photo_woman-NVFP4-s42.png")
    assert "photo_woman-NVFP4-s42.png" in str(info.value)
    assert info.value.hint


def test_truncated_png_raises_decode_error() -> None:
    data = _png(Image.fromarray(_array(256, 256)))
    with pytest.raises(ImageDecodeError, match=r"case-7.*does not decode"):
        decode_png(data[: len(data) // 2], label="case-7")


def test_decode_name_is_an_alias_of_label() -> None:
    with pytest.raises(ImageDecodeError, match=r"ref\.png"):
        decode_png(b"nope", name="ref.png")


def test_decode_pngs_keeps_order_and_names_the_bad_one() -> None:
    arrays = [_array(seed=i) for i in range(6)]
    datas = [_png(Image.fromarray(a)) for a in arrays]
    out = decode_pngs(datas)
    for a, t in zip(arrays, out, strict=True):
        np.testing.assert_array_equal(_as_hwc(t), a)
    out2 = decode_pngs(datas, max_workers=2)
    assert all(torch.equal(x, y) for x, y in zip(out, out2, strict=True))
    bad = [*datas[:3], b"\x89PNG\r\n\x1a\nxx", *datas[3:]]
    with pytest.raises(ImageDecodeError, match="img-3"):
        decode_pngs(bad, [f"img-{i}" for i in range(len(bad))])
    with pytest.raises(ValueError, match="labels"):
        decode_pngs(datas, ["one"])


def test_to_uint8_chw_inputs(tmp_path: Path) -> None:
    arr = _array()
    t = torch.from_numpy(arr).permute(2, 0, 1).contiguous()
    assert to_uint8_chw(t) is t
    data = _png(Image.fromarray(arr))
    assert torch.equal(to_uint8_chw(data), t)
    assert torch.equal(to_uint8_chw(bytearray(data)), t)
    assert torch.equal(to_uint8_chw(memoryview(data)), t)
    assert torch.equal(to_uint8_chw(Image.fromarray(arr)), t)
    assert torch.equal(to_uint8_chw(Image.fromarray(arr).convert("RGBA")), t)
    path = tmp_path / "x.png"
    path.write_bytes(data)
    assert torch.equal(to_uint8_chw(path), t)
    assert torch.equal(to_uint8_chw(str(path)), t)
    grey = t[:1]
    assert torch.equal(to_uint8_chw(grey), grey.expand(3, -1, -1))
    rgba = torch.cat([t, torch.full_like(t[:1], 7)])
    assert torch.equal(to_uint8_chw(rgba), t)


def test_to_uint8_chw_refuses_what_is_not_an_image(tmp_path: Path) -> None:
    t = torch.zeros((3, 8, 8), dtype=torch.uint8)
    with pytest.raises(TypeError, match="dtype"):
        to_uint8_chw(t.float(), label="x")
    with pytest.raises(TypeError, match=r"\(3, H, W\)"):
        to_uint8_chw(torch.zeros((8, 8, 3), dtype=torch.uint8))
    with pytest.raises(TypeError, match="empty"):
        to_uint8_chw(torch.zeros((3, 0, 8), dtype=torch.uint8))
    with pytest.raises(TypeError, match="cannot use"):
        to_uint8_chw(42)  # type: ignore[arg-type]
    with pytest.raises(ImageDecodeError, match="cannot read"):
        to_uint8_chw(tmp_path / "missing.png")


def test_to_uint8_chw_many_mixes_inputs() -> None:
    arrays = [_array(seed=i) for i in range(4)]
    tensors = [torch.from_numpy(a).permute(2, 0, 1).contiguous() for a in arrays]
    mixed: list[Any] = [
        _png(Image.fromarray(arrays[0])),
        tensors[1],
        Image.fromarray(arrays[2]),
        tensors[3],
    ]
    out = to_uint8_chw_many(mixed)
    assert all(torch.equal(x, y) for x, y in zip(out, tensors, strict=True))


def test_encode_png_round_trips() -> None:
    t = torch.from_numpy(_array()).permute(2, 0, 1).contiguous()
    assert torch.equal(decode_png(encode_png(t)), t)


def test_blank_detection() -> None:
    black = torch.zeros((3, 64, 64), dtype=torch.uint8)
    white = torch.full((3, 64, 64), 255, dtype=torch.uint8)
    rng = np.random.default_rng(0)
    dithered = torch.from_numpy(128 + rng.integers(-1, 2, (3, 64, 64))).to(torch.uint8)
    assert is_blank(black)
    assert is_blank(white)
    assert is_blank(dithered)
    assert pixel_std(black) == 0.0
    assert pixel_std(dithered) < BLANK_MAX_STD

    gradient = torch.from_numpy(_array(64, 64)).permute(2, 0, 1).contiguous()
    assert not is_blank(gradient)
    # A dark, minimal render is still a render: one small bright shape on black.
    dark = black.clone()
    dark[:, 20:44, 20:44] = 200
    assert not is_blank(dark)
    # One channel with structure is enough.
    one_channel = black.clone()
    one_channel[2] = gradient[0]
    assert not is_blank(one_channel)
    assert is_blank(dark, max_std=1000.0)
    assert is_blank(_png(Image.fromarray(np.zeros((16, 16, 3), np.uint8))))


def test_iter_decoded_hands_out_batches_in_order() -> None:
    arrays = [_array(seed=i) for i in range(7)]
    datas = [_png(Image.fromarray(a)) for a in arrays]
    batches = list(iter_decoded(datas, 3))
    assert [len(b) for b in batches] == [3, 3, 1]
    flat = [t for b in batches for t in b]
    for a, t in zip(arrays, flat, strict=True):
        np.testing.assert_array_equal(_as_hwc(t), a)
    assert list(iter_decoded([], 4)) == []
    bad = [*datas[:4], b"\x89PNG\r\n\x1a\nbroken", *datas[4:]]
    it = iter_decoded(bad, 2, [f"img-{i}" for i in range(len(bad))])
    assert len(next(it)) == 2
    assert len(next(it)) == 2
    with pytest.raises(ImageDecodeError, match="img-4"):
        next(it)
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_decoded(datas, 0))


def test_submit_decode_returns_a_future() -> None:
    arr = _array()
    fut = submit_decode(_png(Image.fromarray(arr)))
    np.testing.assert_array_equal(_as_hwc(fut.result()), arr)
    with pytest.raises(ImageDecodeError, match=r"late\.png"):
        submit_decode(b"nope", label="late.png").result()


def test_a_pixel_bomb_is_refused_from_its_header() -> None:
    import struct
    import zlib

    from pytest_zimage_quality.errors import ImageDecodeError
    from pytest_zimage_quality.images import decode_png

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 13000, 13000, 8, 2, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")
    with pytest.raises(ImageDecodeError, match=r"13000x13000 pixels.*refused before decoding"):
        decode_png(bomb, label="bomb")
