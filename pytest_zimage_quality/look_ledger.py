"""The prompts each shown verdict rested on, kept beside the image cache: "further look" is exact.

A rerun that reuses cached images and adds prompts after a verdict was seen is optional
stopping: its one-sided error is above alpha. Whether the *images* came from an earlier run says
little (a run stopped by Ctrl-C showed no verdict; a refreshed run reuses nothing). What matters
is which prompts a verdict was shown on. So each run that shows a decision for a candidate config
records that config's gated prompt keys here, and the next run compares them with its suite's:
a suite that gained prompts since, and reuses that run's images, is a further look.

One JSON file per suite, ``<cache dir>/looks/<sha256 of the suite name>.json``:
``{"suite": name, "configs": {config: {"prompts": [...], "decision": ..., "run_id": ...,
"looks": n}}}``, written atomically (``cache.write_atomic``). A file that cannot be read is
treated as empty (the notes are information, never a verdict); one that cannot be written is
skipped silently for the same reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .cache import write_atomic

__all__ = ["EarlierLook", "ledger_path", "read_looks", "record_looks"]


@dataclass(frozen=True)
class EarlierLook:
    """The last verdict shown for a config: its prompts, decision, run and how many looks."""

    prompts: frozenset[str]
    decision: str
    run_id: str
    looks: int


def ledger_path(cache_dir: Path, suite: str) -> Path:
    digest = hashlib.sha256(suite.encode("utf-8")).hexdigest()[:32]
    return Path(cache_dir) / "looks" / f"{digest}.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def read_looks(cache_dir: Path, suite: str) -> dict[str, EarlierLook]:
    """The last shown verdict of each config of ``suite`` (empty when none was recorded)."""
    data = _read(ledger_path(cache_dir, suite))
    configs = data.get("configs") if data.get("suite") == suite else None
    looks: dict[str, EarlierLook] = {}
    for key, entry in (configs or {}).items():
        prompts = entry.get("prompts") if isinstance(entry, dict) else None
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            continue
        looks[str(key)] = EarlierLook(
            prompts=frozenset(prompts),
            decision=str(entry.get("decision", "")),
            run_id=str(entry.get("run_id", "")),
            looks=int(entry.get("looks", 1)) if isinstance(entry.get("looks"), int) else 1,
        )
    return looks


def record_looks(
    cache_dir: Path,
    suite: str,
    shown: Mapping[str, tuple[str, frozenset[str] | set[str] | tuple[str, ...]]],
    *,
    run_id: str,
) -> None:
    """Record ``shown`` = {config: (decision, the suite's gated prompts)} for ``suite``.

    Only decisions a run showed belong here (not INCOMPLETE). A config whose prompt set changed
    counts one more look; an unchanged set (a plain rerun) keeps the count.
    """
    if not shown:
        return
    path = ledger_path(cache_dir, suite)
    earlier = read_looks(cache_dir, suite)
    data = _read(path)
    configs = data.get("configs") if data.get("suite") == suite else None
    merged: dict[str, Any] = dict(configs) if isinstance(configs, dict) else {}
    for key, (decision, prompts) in shown.items():
        before = earlier.get(key)
        now = frozenset(prompts)
        looks = 1 if before is None else before.looks + (before.prompts != now)
        merged[key] = {
            "prompts": sorted(now),
            "decision": decision,
            "run_id": run_id,
            "looks": looks,
        }
    body = json.dumps({"suite": suite, "configs": merged}, indent=1, sort_keys=True)
    try:
        write_atomic(path, body.encode("utf-8"))
    except OSError:
        return  # information only: a cache that cannot be written loses the notes, not a verdict
