"""Images as the scorers see them: 8-bit RGB ``uint8`` tensors of shape ``(3, H, W)`` on the CPU.

- :func:`decode_png` turns PNG bytes into such a tensor with torchvision's libpng decoder
  (palette, grey, grey+alpha and RGBA are converted to RGB the way ``PIL.Image.convert("RGB")``
  does it: alpha is dropped, not composited; 16-bit samples keep their high byte). Bytes
  that do not decode raise :class:`~pytest_zimage_quality.ImageDecodeError` naming the image.
- :func:`decode_pngs` decodes many in a small thread pool (libpng runs without the GIL);
  :func:`submit_decode` starts one decode there and returns a future; :func:`iter_decoded`
  hands out batches while the next batch decodes (decoding overlaps with scoring).
- :func:`to_uint8_chw` accepts the convenience inputs (PNG bytes, a path, a PIL image, a
  tensor) and returns the canonical tensor.
- :func:`is_blank` flags near-constant images (all black from a NaN latent, a flat grey
  frame), which the plugin uses to refuse a broken reference image.

torch and torchvision are imported inside the functions; importing this module is cheap.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ImageDecodeError

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image as PILImage

    #: What the scorers accept as one image.
    ImageLike = torch.Tensor | bytes | bytearray | memoryview | str | os.PathLike[str] | PILImage

__all__ = [
    "BLANK_MAX_STD",
    "MAX_DECODE_PIXELS",
    "decode_png",
    "decode_pngs",
    "encode_png",
    "is_blank",
    "iter_decoded",
    "pixel_std",
    "png_dimensions",
    "submit_decode",
    "to_uint8_chw",
    "to_uint8_chw_many",
]

#: :func:`is_blank`'s default: an image whose every channel has a standard deviation below
#: this many 8-bit levels is "blank". Real renders sit in the tens; a flat frame with
#: sensor-like dither stays below 2.
BLANK_MAX_STD = 2.0

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The largest image :func:`decode_png` decodes (8192 x 8192: 201 MB as a uint8 tensor).
MAX_DECODE_PIXELS = 8192 * 8192

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_decoder: Callable[[Any], Any] | None = None


def _default_workers() -> int:
    return max(1, min(16, os.cpu_count() or 1))


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=_default_workers(), thread_name_prefix="zimage-decode"
            )
        return _executor


def _png_decoder() -> Callable[[Any], Any]:
    """torchvision's PNG decoder op, called directly (RGB mode, no EXIF rotation).

    ``torchvision.io.decode_png`` only adds a per-call ``DeprecationWarning`` (torchvision
    0.29) around this op; calling the op keeps the warning out of every user's test run. A
    torchvision without the op (a future release) falls back to PIL, which gives the same
    pixels for 8-bit PNGs.
    """
    global _decoder
    if _decoder is not None:
        return _decoder
    import torch  # noqa: PLC0415

    try:
        from torchvision.io import ImageReadMode  # noqa: PLC0415
        from torchvision.io import image as _tv_image  # noqa: PLC0415, F401  (loads the op)

        op = torch.ops.image.decode_png
        rgb = ImageReadMode.RGB.value

        def decode(data: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = op(data, rgb, False)
            return out

        _decoder = decode
    except (ImportError, AttributeError, RuntimeError):  # pragma: no cover - future torchvision
        _decoder = _pil_decode
    return _decoder


def _pil_decode(data: torch.Tensor) -> torch.Tensor:  # pragma: no cover - fallback only
    import io  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    with Image.open(io.BytesIO(data.numpy().tobytes())) as im:
        im.load()
        arr = np.asarray(im.convert("RGB"))
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def png_dimensions(data: bytes | bytearray) -> tuple[int, int] | None:
    """(width, height) from the PNG's IHDR header, read without decoding; None if absent."""
    if len(data) < 24 or bytes(data[12:16]) != b"IHDR":
        return None
    width, height = struct.unpack(">II", bytes(data[16:24]))
    return int(width), int(height)


def decode_png(
    data: bytes | bytearray | memoryview,
    *,
    label: str | None = None,
    name: str | None = None,
    max_pixels: int | None = MAX_DECODE_PIXELS,
) -> torch.Tensor:
    """Decode PNG bytes into an RGB ``uint8`` tensor of shape ``(3, H, W)`` on the CPU.

    ``label`` (a file name or case id; ``name`` is an alias) names the image in the error
    raised when the bytes are not a decodable PNG. An image of more than ``max_pixels``
    pixels is refused from its header, before any pixel is decoded (a few KB of PNG can
    decode to gigabytes).
    """
    import torch  # noqa: PLC0415

    what = label or name or "image"
    raw = bytes(data) if isinstance(data, memoryview) else data
    if not raw:
        raise ImageDecodeError(f"{what}: empty file, not a PNG")
    if raw[:8] != _PNG_SIGNATURE:
        raise ImageDecodeError(
            f"{what}: not a PNG (the file starts with {bytes(raw[:8])!r}, "
            f"a PNG starts with {_PNG_SIGNATURE!r})"
        )
    size = png_dimensions(raw)
    if size is None:
        raise ImageDecodeError(f"{what}: PNG does not decode ({len(raw)} bytes): no IHDR header")
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        raise ImageDecodeError(
            f"{what}: the PNG is {size[0]}x{size[1]} pixels, more than the {max_pixels:,} "
            "the scorers decode; refused before decoding"
        )
    buf = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    try:
        img: torch.Tensor = _png_decoder()(buf)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImageDecodeError(f"{what}: PNG does not decode ({len(raw)} bytes): {reason}") from exc
    if img.dtype != torch.uint8:  # 16-bit PNG: keep the high byte, as PIL does for RGB;16
        img = (img.to(torch.int32) >> 8).to(torch.uint8)
    return img


def decode_pngs(
    datas: Sequence[bytes | bytearray | memoryview],
    labels: Sequence[str | None] | None = None,
    *,
    max_workers: int | None = None,
) -> list[torch.Tensor]:
    """Decode many PNGs in a thread pool; results in input order.

    The first image that fails raises its :class:`ImageDecodeError` (naming it).
    ``max_workers`` of ``None`` uses a shared pool of ``min(16, cpu_count)`` threads.
    """
    if labels is not None and len(labels) != len(datas):
        raise ValueError(f"{len(labels)} labels for {len(datas)} images")
    names: Sequence[str | None] = labels if labels is not None else [None] * len(datas)
    if len(datas) <= 1:
        return [decode_png(d, label=n) for d, n in zip(datas, names, strict=True)]
    if max_workers is None:
        return list(
            _pool().map(
                lambda pair: decode_png(pair[0], label=pair[1]), zip(datas, names, strict=True)
            )
        )
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="zimage-decode") as ex:
        return list(
            ex.map(lambda pair: decode_png(pair[0], label=pair[1]), zip(datas, names, strict=True))
        )


def iter_decoded(
    datas: Sequence[bytes | bytearray | memoryview],
    batch_size: int,
    labels: Sequence[str | None] | None = None,
) -> Iterator[list[torch.Tensor]]:
    """Decode ``datas`` in batches of ``batch_size``, in order, while the caller works: the
    next batch is already decoding in the shared pool when a batch is handed out, so PNG
    decoding overlaps with scoring. A failing image raises its :class:`ImageDecodeError`
    when its batch is reached."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if labels is not None and len(labels) != len(datas):
        raise ValueError(f"{len(labels)} labels for {len(datas)} images")
    names: Sequence[str | None] = labels if labels is not None else [None] * len(datas)
    pool = _pool()

    def submit(start: int) -> list[Future[torch.Tensor]]:
        stop = min(start + batch_size, len(datas))
        return [pool.submit(decode_png, datas[i], label=names[i]) for i in range(start, stop)]

    pending = submit(0)
    for start in range(0, len(datas), batch_size):
        current = pending
        pending = submit(start + batch_size) if start + batch_size < len(datas) else []
        try:
            batch = [f.result() for f in current]
        except BaseException:
            for f in pending:
                f.cancel()
            raise
        yield batch


def submit_decode(
    data: bytes | bytearray | memoryview, *, label: str | None = None
) -> Future[torch.Tensor]:
    """Start decoding one PNG in the shared pool and return at once; ``.result()`` gives the
    tensor (or raises the :class:`ImageDecodeError`). Lets a caller score one image while the
    next one (or its reference) decodes."""
    return _pool().submit(decode_png, data, label=label)


def encode_png(image: torch.Tensor, *, compress_level: int = 4) -> bytes:
    """Encode an RGB ``uint8`` ``(3, H, W)`` tensor as PNG bytes (PIL; ComfyUI's level 4)."""
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    img = to_uint8_chw(image)
    buf = io.BytesIO()
    Image.fromarray(img.permute(1, 2, 0).contiguous().cpu().numpy()).save(
        buf, format="PNG", compress_level=compress_level
    )
    return buf.getvalue()


def _describe(obj: object) -> str:
    return type(obj).__module__ + "." + type(obj).__qualname__


def to_uint8_chw(image: ImageLike, *, label: str | None = None) -> torch.Tensor:
    """Return ``image`` as an RGB ``uint8`` tensor of shape ``(3, H, W)``.

    Accepts PNG bytes, a path to a PNG file, a PIL image (converted to RGB), or a ``uint8``
    tensor of shape ``(3, H, W)`` (returned as is, on whatever device it lives), ``(1, H, W)``
    (grey, repeated) or ``(4, H, W)`` (alpha dropped). Float tensors are refused: the scorers
    define their input as 8-bit pixels, as a PNG holds them.
    """
    import torch  # noqa: PLC0415

    what = label or "image"
    if isinstance(image, torch.Tensor):
        if image.dtype != torch.uint8:
            raise TypeError(
                f"{what}: expected a uint8 tensor of shape (3, H, W), got dtype {image.dtype}"
            )
        if image.dim() != 3 or image.shape[0] not in (1, 3, 4):
            raise TypeError(
                f"{what}: expected a uint8 tensor of shape (3, H, W), got {tuple(image.shape)}"
            )
        if image.shape[1] == 0 or image.shape[2] == 0:
            raise TypeError(f"{what}: empty image {tuple(image.shape)}")
        if image.shape[0] == 1:
            return image.expand(3, -1, -1).contiguous()
        if image.shape[0] == 4:
            return image[:3].contiguous()
        return image
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_png(image, label=label)
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageDecodeError(f"{label or path}: cannot read: {exc}") from exc
        return decode_png(data, label=label or str(path))
    try:
        from PIL import Image  # noqa: PLC0415
    except ImportError:  # pragma: no cover - pillow is a dependency
        Image = None  # type: ignore[assignment]
    if Image is not None and isinstance(image, Image.Image):
        import numpy as np  # noqa: PLC0415

        arr = np.asarray(image.convert("RGB"))
        return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()
    raise TypeError(
        f"{what}: cannot use a {_describe(image)} as an image "
        "(give PNG bytes, a path, a PIL image or a uint8 (3, H, W) tensor)"
    )


def to_uint8_chw_many(
    images: Sequence[ImageLike], labels: Sequence[str | None] | None = None
) -> list[torch.Tensor]:
    """:func:`to_uint8_chw` over a sequence; PNG bytes among them are decoded in the pool."""
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{len(labels)} labels for {len(images)} images")
    names: Sequence[str | None] = labels if labels is not None else [None] * len(images)
    out: list[Any] = [None] * len(images)
    byte_idx = [i for i, im in enumerate(images) if isinstance(im, (bytes, bytearray, memoryview))]
    if byte_idx:
        decoded = decode_pngs(
            [images[i] for i in byte_idx],  # type: ignore[misc]
            [names[i] for i in byte_idx],
        )
        for i, img in zip(byte_idx, decoded, strict=True):
            out[i] = img
    for i, im in enumerate(images):
        if out[i] is None:
            out[i] = to_uint8_chw(im, label=names[i])
    return out


def pixel_std(image: ImageLike) -> float:
    """The largest per-channel standard deviation of the pixel values, in 8-bit levels."""
    import torch  # noqa: PLC0415

    img = to_uint8_chw(image)
    flat = img.reshape(3, -1).to(torch.float64)
    return float(flat.std(dim=1, unbiased=False).max())


def is_blank(image: ImageLike, *, max_std: float = BLANK_MAX_STD) -> bool:
    """True when the image is (nearly) one flat colour: every channel's pixel standard
    deviation is below ``max_std`` 8-bit levels (default :data:`BLANK_MAX_STD`).

    An all-black frame (the classic NaN-latent failure), an all-white or a flat grey frame
    are blank; any real render, however dark or minimal, is not.
    """
    return pixel_std(image) < max_std
