"""The report directory of one run: images, the crash-safe results log, summary and report.

Layout (docs/artifacts.md)::

    <report dir>/
        results.jsonl            one JSON object per finished case, appended, flushed, fsynced
        summary.json             the gate, the tables, the environment (at session end)
        report.html              self-contained HTML report (at session end)
        images/<prompt>/<config>/s<seed>-<sha8>.png     deduplicated by content
        thumbs/<sha16>.jpg       thumbnails for the HTML report
        history/<run id>/        an earlier run's results.jsonl / summary.json / report.html

A new run moves the previous run's files into ``history/`` before writing its own, so two
runs never mix lines in one file; every line also carries its ``run_id``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import secrets
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .cache import write_atomic
from .records import CaseRecord
from .redaction import redact

__all__ = ["ReportDir", "ResultsLog", "new_run_id", "redacted"]

log = logging.getLogger(__name__)

_RUN_FILES = ("results.jsonl", "summary.json", "report.html")


def new_run_id(*, simulated: bool = False) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return f"{stamp}-{secrets.token_hex(3)}" + ("-SIMULATED" if simulated else "")


def _safe_part(text: str) -> str:
    """A path component that keeps Unicode keys readable but cannot escape the folder."""
    cleaned = "".join("_" if ch in '/\\:*?"<>|' or ord(ch) < 32 else ch for ch in text).strip(" .")
    return cleaned or "_"


class ReportDir:
    """Paths under one run's report directory, and the image store."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.root = Path(root)
        self.run_id = run_id
        self._lock = threading.Lock()

    @property
    def results_path(self) -> Path:
        return self.root / "results.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.root / "summary.json"

    @property
    def html_path(self) -> Path:
        return self.root / "report.html"

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def thumbs_dir(self) -> Path:
        return self.root / "thumbs"

    def prepare(self) -> Path | None:
        """Create the directory; move an earlier run's files to history/. Returns where they went."""
        self.root.mkdir(parents=True, exist_ok=True)
        present = [self.root / name for name in _RUN_FILES if (self.root / name).exists()]
        if not present:
            return None
        old_id = _run_id_of(self.results_path) or _run_id_of_summary(self.summary_path)
        old_id = old_id or time.strftime("%Y%m%d-%H%M%S", time.gmtime(present[0].stat().st_mtime))
        target = self.root / "history" / _safe_part(old_id)
        suffix = 1
        while target.exists():
            suffix += 1
            target = self.root / "history" / f"{_safe_part(old_id)}.{suffix}"
        target.mkdir(parents=True)
        for path in present:
            shutil.move(str(path), str(target / path.name))
        return target

    def image_path(self, prompt: str, config: str, seed: int, sha256: str) -> Path:
        return (
            self.images_dir / _safe_part(prompt) / _safe_part(config) / f"s{seed}-{sha256[:8]}.png"
        )

    def store_image(self, prompt: str, config: str, seed: int, sha256: str, png: bytes) -> Path:
        """Write the image once per content; an existing identical file is reused."""
        path = self.image_path(prompt, config, seed, sha256)
        with self._lock:
            if path.exists() and path.stat().st_size == len(png):
                return path
            write_atomic(path, png)
        return path

    def relative(self, path: str | Path) -> str:
        """``path`` relative to the report dir when inside it (for the HTML report)."""
        try:
            return Path(path).resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return Path(path).as_posix()

    def write_summary(self, summary: Mapping[str, Any]) -> Path:
        """Write summary.json. A value JSON cannot hold (an infinite or NaN float from a
        degenerate figure) is written as null, with a log line naming where: the run's
        summary is never lost to one bad number."""
        bad: list[str] = []
        data = _finite_json(redacted(summary), "summary", bad)
        if bad:
            log.warning("zimage: summary.json: non-finite values written as null at %s", bad)
        text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
        write_atomic(self.summary_path, (text + "\n").encode("utf-8"))
        return self.summary_path


class ResultsLog:
    """Append-only JSON Lines log of finished cases: each line is flushed and fsynced at once.

    One ``write`` call per line on a file opened in append mode, so a process killed at any
    point leaves only complete lines (a torn final line can only come from the OS losing
    unsynced data, which the fsync rules out for lines already written).
    """

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self._lock = threading.Lock()
        self._fd: int | None = None
        self.count = 0

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return self._fd

    def append(self, record: CaseRecord, **extra: Any) -> None:
        data = redacted({"run_id": self.run_id, **record.to_dict(), **extra})
        data["run_id"] = self.run_id
        line = (json.dumps(data, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        with self._lock:
            fd = self._open()
            written = os.write(fd, line)
            while written < len(line):  # a short write: finish it before anyone else writes
                written += os.write(fd, line[written:])
            os.fsync(fd)
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def redacted(value: Any) -> Any:
    """``value`` (JSON data) with every registered secret redacted in its strings: the last
    safety net before results.jsonl and summary.json reach the disk."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redacted(k) if isinstance(k, str) else k: redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(v) for v in value]
    return value


def _finite_json(value: Any, where: str, bad: list[str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        bad.append(where)
        return None
    if isinstance(value, Mapping):
        return {k: _finite_json(v, f"{where}.{k}", bad) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_json(v, f"{where}[{i}]", bad) for i, v in enumerate(value)]
    return value


def read_results(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a results log (a torn last line, if any, is skipped)."""
    records = []
    with contextlib.suppress(FileNotFoundError), path.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


def _run_id_of(results: Path) -> str | None:
    for record in read_results(results)[:1]:
        value = record.get("run_id")
        return str(value) if value else None
    return None


def _run_id_of_summary(summary: Path) -> str | None:
    try:
        value = json.loads(summary.read_text(encoding="utf-8")).get("run_id")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None
