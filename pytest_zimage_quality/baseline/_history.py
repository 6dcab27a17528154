"""A history directory (one summary.json per stored run): each candidate config's Δ and
verdict across the runs, oldest first, for the report's chart; a broken stored file is a
note, never a stop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._read import BaselineError, _configs, load_baseline

__all__ = ["HistoryPoint", "load_history"]


@dataclass(frozen=True)
class HistoryPoint:
    """One config in one stored run."""

    run_id: str
    created: str
    verdict: str
    mean_diff: float | None
    lower_bound: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "created": self.created,
            "verdict": self.verdict,
            "mean_diff": self.mean_diff,
            "lower_bound": self.lower_bound,
        }


def _history_files(directory: Path) -> list[Path]:
    files = [p for p in directory.glob("*.json") if p.is_file()]
    files += [p for p in directory.glob("*/summary.json") if p.is_file()]
    return sorted(files)


def load_history(
    directory: Path | str, *, current: Mapping[str, Any] | None = None
) -> tuple[dict[tuple[str, str], list[HistoryPoint]], list[str]]:
    """Each candidate config's Δ and verdict across the runs stored in ``directory`` (its
    ``*.json`` files and ``*/summary.json``), oldest first, with ``current`` (this run) last.

    Returns the series keyed by (suite, config) and a note per stored file that could not
    be used (a broken file in a history never stops the run). Raises :class:`BaselineError`
    when the directory itself does not exist.
    """
    root = Path(directory)
    if not root.is_dir():
        raise BaselineError(
            f"history directory {root}: not a directory",
            hint="pass a directory holding one summary.json per stored run",
        )
    runs: list[tuple[str, str, Mapping[str, Any]]] = []
    notes = []
    for file in _history_files(root):
        try:
            summary = load_baseline(file).summary
        except BaselineError as exc:
            notes.append(f"history: skipped {exc.message}")
            continue
        runs.append((str(summary.get("created") or ""), str(summary.get("run_id") or ""), summary))
    runs.sort(key=lambda run: (run[0], run[1]))
    if current is not None:
        runs = [r for r in runs if r[1] != current.get("run_id")]
        runs.append((str(current.get("created") or ""), str(current.get("run_id") or ""), current))
    series: dict[tuple[str, str], list[HistoryPoint]] = {}
    for created, run_id, summary in runs:
        for key, state in _configs(summary).items():
            if state.role == "reference":
                continue
            series.setdefault(key, []).append(
                HistoryPoint(run_id, created, state.verdict, state.mean_diff, state.lower_bound)
            )
    return series, notes
