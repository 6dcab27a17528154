"""Content-addressed store of generated images, so unchanged references are never regenerated.

The key is the sha256 of everything that determines an image (docs/caching.md):

- the final graph without its ``filename_prefix`` (prompt text, seed, every override and
  every other input of every node), as ``workflow.graph_hash`` computes it;
- each model file the graph names, with the identity the server exposes for it
  (``/view_metadata``: the safetensors header metadata; ``None`` when it exposes none);
- the server's ComfyUI version and device name (another GPU or version may sample differently);
- a user-set revision key (``--zimage-revision`` / the suite's ``revision``) for what the
  server cannot show, such as a model file replaced in place without metadata.

Entries are ``<root>/<k[:2]>/<k>.png`` plus ``<k>.json`` holding the PNG's sha256 and the
original generation's timings. A discarded entry is reported through ``on_discard`` (the
engine relays it as a ZImageWarning from the test thread). Writes are atomic (temp file in the same directory, fsync,
``os.replace``), so concurrent runs and xdist workers never see half an entry; an entry whose
bytes do not match their recorded sha256 is discarded with a warning and regenerated.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ZImageWarning
from .workflow import canonical_json

__all__ = ["CACHE_FORMAT", "CachedImage", "ImageCache", "cache_key", "write_atomic"]

#: Bumped when the key's meaning changes, so old entries are never misread.
CACHE_FORMAT = 1


def cache_key(
    *,
    graph_hash: str,
    models: Mapping[str, object],
    server: Mapping[str, object],
    revision: str,
) -> str:
    """The cache key of one image; see the module docstring for what each part covers."""
    payload = {
        "format": CACHE_FORMAT,
        "graph": graph_hash,
        "models": dict(sorted(models.items())),
        "server": dict(sorted(server.items())),
        "revision": revision,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


@dataclass(frozen=True)
class CachedImage:
    """A cache hit: the PNG bytes and what was recorded when it was generated."""

    key: str
    png: bytes
    sha256: str
    meta: Mapping[str, Any]


class ImageCache:
    """The on-disk store; safe for concurrent processes."""

    def __init__(self, root: Path, *, on_discard: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.on_discard = on_discard or _warn
        self.hits = 0
        self.misses = 0
        self.repaired = 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        folder = self.root / key[:2]
        return folder / f"{key}.png", folder / f"{key}.json"

    def get(self, key: str) -> CachedImage | None:
        """The entry for ``key``, or None; a corrupt entry is removed with a ZImageWarning."""
        png_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            png = png_path.read_bytes()
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError) as exc:
            self._discard(key, f"unreadable entry ({exc})")
            return None
        digest = hashlib.sha256(png).hexdigest()
        if not isinstance(meta, dict) or meta.get("sha256") != digest:
            self._discard(
                key,
                f"{png_path.name} does not match its recorded sha256 (truncated or corrupt)",
            )
            return None
        self.hits += 1
        return CachedImage(key=key, png=png, sha256=digest, meta=meta)

    def put(self, key: str, png: bytes, meta: Mapping[str, Any]) -> str:
        """Store ``png`` under ``key``; returns its sha256. The PNG lands before its metadata."""
        digest = hashlib.sha256(png).hexdigest()
        png_path, meta_path = self._paths(key)
        write_atomic(png_path, png)
        body = {**meta, "sha256": digest, "key": key, "format": CACHE_FORMAT}
        write_atomic(meta_path, json.dumps(body, indent=1, sort_keys=True).encode("utf-8"))
        return digest

    def _discard(self, key: str, why: str) -> None:
        self.repaired += 1
        self.misses += 1
        self.on_discard(f"image cache entry {key[:16]}… discarded: {why}; regenerating it")
        for path in self._paths(key):
            with contextlib.suppress(OSError):
                path.unlink()


def _warn(message: str) -> None:
    warnings.warn(ZImageWarning(message), stacklevel=4)
