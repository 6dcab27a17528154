"""The content-addressed image cache: keys, hash checks, atomic writes under concurrency."""

from __future__ import annotations

import hashlib
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from pytest_zimage_quality.cache import ImageCache, cache_key

KEY_PARTS: dict[str, Any] = {
    "graph_hash": "g" * 64,
    "models": {"diffusion_models/a.safetensors": {"modelspec.hash": "1"}},
    "server": {"comfyui_version": "0.18.1", "device": "NVIDIA H100"},
    "revision": "",
}


def test_key_changes_with_every_part() -> None:
    base = cache_key(**KEY_PARTS)
    assert base == cache_key(**KEY_PARTS)
    variants = [
        {**KEY_PARTS, "graph_hash": "h" * 64},
        {**KEY_PARTS, "models": {"diffusion_models/a.safetensors": {"modelspec.hash": "2"}}},
        {**KEY_PARTS, "models": {"diffusion_models/a.safetensors": None}},
        {**KEY_PARTS, "server": {"comfyui_version": "0.18.2", "device": "NVIDIA H100"}},
        {**KEY_PARTS, "server": {"comfyui_version": "0.18.1", "device": "NVIDIA H200"}},
        {**KEY_PARTS, "revision": "weights v2"},
    ]
    keys = {cache_key(**v) for v in variants}
    assert base not in keys
    assert len(keys) == len(variants)


def test_put_get_round_trip(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path)
    assert cache.get("a" * 64) is None
    digest = cache.put("a" * 64, b"\x89PNG fake", {"wall_seconds": 1.5})
    hit = cache.get("a" * 64)
    assert hit is not None
    assert hit.png == b"\x89PNG fake"
    assert hit.sha256 == digest == hashlib.sha256(b"\x89PNG fake").hexdigest()
    assert hit.meta["wall_seconds"] == 1.5
    assert (cache.hits, cache.misses) == (1, 1)


def test_truncated_entry_is_discarded_and_reported(tmp_path: Path) -> None:
    notes: list[str] = []
    cache = ImageCache(tmp_path, on_discard=notes.append)
    cache.put("b" * 64, b"x" * 1000, {})
    png = next(tmp_path.rglob("*.png"))
    png.write_bytes(b"x" * 500)  # a truncated blob
    assert cache.get("b" * 64) is None
    assert len(notes) == 1
    assert "does not match its sha256" in notes[0]
    assert not png.exists()
    assert cache.repaired == 1


def test_unreadable_metadata_is_discarded(tmp_path: Path) -> None:
    notes: list[str] = []
    cache = ImageCache(tmp_path, on_discard=notes.append)
    cache.put("c" * 64, b"data", {})
    next(tmp_path.rglob("*.json")).write_text("{half")
    assert cache.get("c" * 64) is None
    assert notes


def _writer(root: str, worker: int) -> None:
    cache = ImageCache(Path(root))
    for round_ in range(30):
        payload = bytes([worker]) * (50_000 + round_)
        cache.put("d" * 64, payload, {"worker": worker})


def test_concurrent_writers_never_leave_a_torn_entry(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), i)) for i in range(3)]
    for proc in procs:
        proc.start()
    reads = 0
    discarded: list[str] = []
    cache = ImageCache(tmp_path, on_discard=discarded.append)
    while any(p.is_alive() for p in procs):
        hit = cache.get("d" * 64)
        if hit is not None:
            # The blob is written before the entry that names it: a hit is always consistent.
            assert hashlib.sha256(hit.png).hexdigest() == hit.sha256
            reads += 1
    for proc in procs:
        proc.join()
        assert proc.exitcode == 0
    assert discarded == []  # no reader ever saw an inconsistent entry
    final = ImageCache(tmp_path, on_discard=lambda note: pytest.fail(note)).get("d" * 64)
    assert final is not None
    assert final.meta["worker"] in (0, 1, 2)
    assert not list(tmp_path.rglob("*.tmp"))


def test_files_get_the_user_umask(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        cache = ImageCache(tmp_path / "shared")
        digest = cache.put("e" * 64, b"\x89PNG shared", {})
    finally:
        os.umask(old)
    entry = tmp_path / "shared" / "ee" / f"{'e' * 64}.json"
    blob = tmp_path / "shared" / "blobs" / digest[:2] / f"{digest}.png"
    for path in (entry, blob):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE(entry.parent.stat().st_mode) == 0o755
    assert not list((tmp_path / "shared").rglob("*.tmp"))


def test_an_entry_pointing_at_another_key_is_discarded(tmp_path: Path) -> None:
    notes: list[str] = []
    cache = ImageCache(tmp_path, on_discard=notes.append)
    cache.put("a" * 64, b"\x89PNG one", {})
    cache.put("b" * 64, b"\x89PNG two", {})
    # someone copies b's entry over a's: a valid image, but not the one a's key names
    (tmp_path / "aa" / f"{'a' * 64}.json").write_bytes(
        (tmp_path / "bb" / f"{'b' * 64}.json").read_bytes()
    )
    assert cache.get("a" * 64) is None
    assert notes
    assert "another key" in notes[0]
    hit = cache.get("b" * 64)
    assert hit is not None
    assert hit.png == b"\x89PNG two"


def test_an_unwritable_cache_warns_once_and_the_run_goes_on(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache directory should be")
    notes: list[str] = []
    cache = ImageCache(blocker, on_discard=notes.append)
    for i in range(3):
        digest = cache.put(str(i) * 64, b"\x89PNG %d" % i, {})
        assert digest == hashlib.sha256(b"\x89PNG %d" % i).hexdigest()
    assert len(notes) == 1
    assert "cannot be written" in notes[0]
    assert "without storing" in notes[0]
    assert cache.get("0" * 64) is None
