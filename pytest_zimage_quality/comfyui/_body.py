"""Reading a reply's body under a size cap and a whole-request deadline.

httpx's timeouts bound each read, so a server that sends one byte every few seconds never
trips them, and ``response.content`` holds whatever arrives, however large. The transport
streams every body through :func:`read_body` instead: it stops at the byte cap (counted
after decompression, so a gzip bomb stops there too) and at the request's deadline
(checked after each chunk, so a trickle fails within one read gap of the deadline).
"""

from __future__ import annotations

import time
import zlib

import httpx

__all__ = ["BodyTooLarge", "BodyTooSlow", "UnsupportedEncoding", "read_body"]


class BodyTooLarge(Exception):
    """The body grew past its cap (``limit`` bytes)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the reply is larger than {limit:,} bytes")
        self.limit = limit


class BodyTooSlow(Exception):
    """The body had not arrived whole by the request's deadline."""

    def __init__(self, received: int) -> None:
        super().__init__(f"only {received:,} bytes of the reply arrived before the deadline")
        self.received = received


class UnsupportedEncoding(Exception):
    """A ``Content-Encoding`` the client did not ask for and will not inflate unbounded."""


def _decoder(encoding: str) -> zlib._Decompress | None:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise UnsupportedEncoding(f"Content-Encoding {encoding!r}")


def read_body(response: httpx.Response, *, limit: int, deadline: float) -> bytes:
    """The whole (decoded) body of a streamed ``response``; closes it in every case.

    Raises :class:`BodyTooLarge`, :class:`BodyTooSlow` or :class:`UnsupportedEncoding`;
    httpx's own transport errors pass through.
    """
    try:
        try:
            whole = response.content  # already read (a response built in memory)
        except httpx.ResponseNotRead:
            pass
        else:
            if len(whole) > limit:
                raise BodyTooLarge(limit)
            return whole
        declared = response.headers.get("content-length", "")
        if (
            declared.isdigit()
            and int(declared) > limit
            and not response.headers.get("content-encoding")
        ):
            raise BodyTooLarge(limit)
        decoder = _decoder(response.headers.get("content-encoding", "").strip().lower())
        parts: list[bytes] = []
        size = 0
        for raw in response.iter_raw():
            if decoder is None:
                parts.append(raw)
                size += len(raw)
            else:
                data = raw
                while data:
                    out = decoder.decompress(data, limit + 1 - size)
                    parts.append(out)
                    size += len(out)
                    if size > limit:
                        raise BodyTooLarge(limit)
                    data = decoder.unconsumed_tail
            if size > limit:
                raise BodyTooLarge(limit)
            if time.monotonic() > deadline:
                raise BodyTooSlow(size)
        if decoder is not None:
            tail = decoder.flush()
            size += len(tail)
            parts.append(tail)
            if size > limit:
                raise BodyTooLarge(limit)
        return b"".join(parts)
    finally:
        response.close()
