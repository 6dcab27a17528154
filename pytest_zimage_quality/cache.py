"""Content-addressed store of generated images, so unchanged references are never regenerated.

The key is the sha256 of everything that determines an image (docs/caching.md):

- the final graph without its ``filename_prefix`` (prompt text, seed, every override and
  every other input of every node), as ``workflow.graph_hash`` computes it;
- each model file the graph names, with the identity the server exposes for it
  (``/view_metadata``: the safetensors header metadata; ``None`` when it exposes none);
- the server's ComfyUI version and device name (another GPU or version may sample differently);
- a user-set revision key (``--zimage-revision`` / the suite's ``revision``) for what the
  server cannot show, such as a model file replaced in place without metadata.

An entry is ``<root>/<k[:2]>/<k>.json``, holding the original generation's timings and the
sha256 of its PNG, which is stored once per content as ``<root>/blobs/<s[:2]>/<s>.png``. The
blob is written before the entry that names it, and each file is replaced atomically, so
any interleaving of writers leaves every entry pointing at a complete blob. A discarded entry is reported through ``on_discard`` (the
engine relays it as a ZImageWarning from the test thread). Writes are atomic (temp file in the same directory, fsync,
``os.replace``), so concurrent runs and xdist workers never see half an entry; an entry whose
bytes do not match their recorded sha256, or that records another key than its name, is
discarded with a warning and regenerated. Files get the user's umask (a cache shared between
users works); a cache that cannot be written warns once and the run goes on without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
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
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The file gets the user's umask, as any tool's files do (0644 under the usual 022), so a
    cache shared between users works: ``mkstemp`` would make it 0600.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 100 collisions of 48 random bits
        raise FileExistsError(f"no free temporary name next to {path}")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
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
        #: Why nothing is stored any more ("" while the cache is writable).
        self.unwritable = ""

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def _blob(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / f"{sha256}.png"

    def get(self, key: str) -> CachedImage | None:
        """The entry for ``key``, or None; a corrupt entry is removed and reported."""
        entry = self._entry(key)
        try:
            meta = json.loads(entry.read_text(encoding="utf-8"))
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            self.misses += 1  # absent, or another user's entry we may not read
            return None
        except (OSError, ValueError, RecursionError) as exc:
            self._discard(key, entry, None, f"unreadable entry ({type(exc).__name__})")
            return None
        sha = meta.get("sha256") if isinstance(meta, dict) else None
        if not isinstance(sha, str) or len(sha) != 64:
            self._discard(key, entry, None, "the entry names no image")
            return None
        if meta.get("key") != key:  # an entry copied or edited to point elsewhere
            self._discard(key, entry, None, "the entry records another key than its name")
            return None
        blob = self._blob(sha)
        try:
            png = blob.read_bytes()
        except OSError:
            self._discard(key, entry, None, f"its image {blob.name} is missing")
            return None
        if hashlib.sha256(png).hexdigest() != sha:
            self._discard(
                key, entry, blob, f"{blob.name} does not match its sha256 (truncated or corrupt)"
            )
            return None
        self.hits += 1
        return CachedImage(key=key, png=png, sha256=sha, meta=meta)

    def put(self, key: str, png: bytes, meta: Mapping[str, Any]) -> str:
        """Store ``png`` under ``key``; returns its sha256. The blob lands before the entry.

        A cache that cannot be written (read-only, full, another user's) is reported once
        through ``on_discard`` and then left alone: the run goes on without storing.
        """
        digest = hashlib.sha256(png).hexdigest()
        if self.unwritable:
            return digest
        blob = self._blob(digest)
        body = {**meta, "sha256": digest, "key": key, "format": CACHE_FORMAT}
        try:
            if not (blob.exists() and blob.stat().st_size == len(png)):
                write_atomic(blob, png)
            write_atomic(
                self._entry(key), json.dumps(body, indent=1, sort_keys=True).encode("utf-8")
            )
        except OSError as exc:
            self.unwritable = f"{type(exc).__name__}: {exc.strerror or exc}"
            self.on_discard(
                f"the image cache {self.root} cannot be written ({self.unwritable}); "
                "this run goes on without storing images in it"
            )
        return digest

    def _discard(self, key: str, entry: Path, blob: Path | None, why: str) -> None:
        self.repaired += 1
        self.misses += 1
        self.on_discard(f"image cache entry {key[:16]}… discarded: {why}; regenerating it")
        for path in (entry, blob):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()


def _warn(message: str) -> None:
    warnings.warn(ZImageWarning(message), stacklevel=4)
