"""The bytes and texts a hostile or broken server sends, built without holding them whole.

Kept apart from the fault bookkeeping because each one is a small format exercise: a
permessage-deflate payload that inflates a thousandfold, a valid PNG whose pixel count passes
Pillow's bomb check, the text real ComfyUI sends for a CUDA out-of-memory error, and error
bodies that carry request headers or terminal control sequences.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Iterator, Mapping

__all__ = [
    "CONTROL_TEXT",
    "OOM_TIPS",
    "cuda_oom_message",
    "deflate_bomb",
    "echo_headers_body",
    "padded_stream",
    "pixel_bomb_png",
    "websocket_frame_header",
]

_MIB = 1 << 20
_CHUNK = 16 * _MIB

#: ComfyUI's ``execution.py`` appends this to the exception text of an OOM (``"{ex}\n{tips}"``).
OOM_TIPS = (
    "This error means you ran out of memory on your GPU.\n\n"
    "TIPS: If the workflow worked before you might have accidentally set the batch_size to "
    "a large number."
)

#: Server error text with terminal escapes: colour, clear screen, a window-title OSC, cursor
#: movement, a carriage return that overwrites the line, a backspace, a bell and a NUL.
CONTROL_TEXT = (
    "\x1b[31mERROR\x1b[0m model failed\x1b[2J\x1b[H"
    "\x1b]0;pwned terminal title\x07"
    "\x1b[1A\x1b[2Kfake all tests PASSED\r"
    "overwritten\x08\x07\x00 \x9b31m C1 CSI\u202etxt.exe"
)


def cuda_oom_message(
    allocate_gib: float = 2.0, total_gib: float = 79.19, free_mib: float = 1.88, device: int = 0
) -> str:
    """The ``str()`` of a ``torch.OutOfMemoryError`` from the CUDA caching allocator."""
    in_use = total_gib - free_mib / 1024
    return (
        f"CUDA out of memory. Tried to allocate {allocate_gib:.2f} GiB. GPU {device} has a total "
        f"capacity of {total_gib:.2f} GiB of which {free_mib:.2f} MiB is free. Including "
        f"non-PyTorch memory, this process has {in_use:.2f} GiB memory in use. Of the allocated "
        f"memory {in_use - 0.62:.2f} GiB is allocated by PyTorch, and 602.31 MiB is reserved by "
        "PyTorch but unallocated. If reserved but unallocated memory is large try setting "
        "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See "
        "documentation for Memory Management  "
        "(https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)"
    )


def echo_headers_body(status: int, headers: Mapping[str, str]) -> str:
    """A debugging proxy's error page that repeats the request's headers verbatim."""
    lines = [f"{status} upstream error", "", "request headers:"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=4)
def deflate_bomb(inflated_size: int) -> bytes:
    """A raw-deflate payload of spaces that inflates to ``inflated_size`` bytes (rounded up to
    16 MiB), ending as permessage-deflate wants (sync flush, ``00 00 ff ff`` removed).

    Only one 16 MiB chunk is ever compressed: once the window is all spaces, each further
    chunk's byte-aligned segment is identical, so the rest is that segment repeated."""
    chunks = max(1, -(-inflated_size // _CHUNK))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
    chunk = b" " * _CHUNK
    first = compressor.compress(b"{" + chunk[1:]) + compressor.flush(zlib.Z_SYNC_FLUSH)
    if chunks == 1:
        return first[:-4]
    steady = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
    third = compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
    if steady != third:  # zlib changed its block layout: fall back to compressing it all
        rest = [third] + [
            compressor.compress(chunk) + compressor.flush(zlib.Z_SYNC_FLUSH)
            for _ in range(chunks - 3)
        ]
        return (first + steady + b"".join(rest))[:-4]
    return (first + steady * (chunks - 1))[:-4]


def websocket_frame_header(length: int, *, opcode: int = 0x1, compressed: bool = True) -> bytes:
    """An unmasked server-to-client frame header (FIN set; RSV1 set when ``compressed``)."""
    first = 0x80 | (0x40 if compressed else 0) | opcode
    if length < 126:
        return struct.pack("!BB", first, length)
    if length < 1 << 16:
        return struct.pack("!BBH", first, 126, length)
    return struct.pack("!BBQ", first, 127, length)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=4)
def pixel_bomb_png(side: int) -> bytes:
    """A valid 1-bit greyscale PNG of ``side`` x ``side`` black pixels (a few KB for 13000²),
    compressed row by row so the raw scanlines are never held whole."""
    row = b"\x00" + bytes((side + 7) // 8)  # filter byte "none" + packed bits
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * min(side, 1024)) for _ in range(side // 1024)]
    parts.append(compressor.compress(row * (side % 1024)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def padded_stream(head: bytes, size: int, chunk: int = _MIB) -> Iterator[bytes]:
    """``head`` followed by zero bytes up to ``size`` in all, one reused buffer at a time."""
    head = head[:size]
    yield head
    zeros = bytes(chunk)
    left = size - len(head)
    while left > 0:
        step = min(left, chunk)
        yield zeros if step == chunk else zeros[:step]
        left -= step
