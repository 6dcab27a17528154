"""The record of one HTTP request, kept by the fake for assertions (no aiohttp import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RecordedRequest"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    #: the path as requested, ``/api`` prefix included
    path: str
    #: the matched route template without the ``/api`` prefix (``/history/{prompt_id}``)
    route: str
    query: dict[str, str]
    #: the parsed JSON body, or None (no body, not JSON, or multipart)
    json: Any
    body: bytes
    headers: dict[str, str]
    time: float
