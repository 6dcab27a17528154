"""What a run that talks to a server holds while it runs: the stop signals and the report
directory's lock.

SIGTERM/SIGHUP take pytest's Ctrl-C path (``stop_signals``), so a CI runner's cancel still
writes the artifacts. Two runs writing one report directory would end with one's
results.jsonl beside the other's summary and report, so the directory is locked for the run
(a flock: the kernel drops it when the process dies, so a killed run leaves no lock).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from ..stop_signals import stop_on_signals

__all__ = ["REPORT_LOCK", "RunGuard", "check_writable_dir", "lock_report_dir"]

#: The file in the report directory whose flock marks the run writing there.
REPORT_LOCK = ".zimage-run.lock"


class RunGuard:
    """The signal handlers and the report directory lock of one run, released together."""

    def __init__(self, restore_signals: Callable[[], None], lock: IO[str] | None) -> None:
        self._restore_signals: Callable[[], None] | None = restore_signals
        self._lock = lock

    @classmethod
    def start(cls, report_dir: Path | None) -> RunGuard:
        """Lock ``report_dir`` (None: an xdist worker, whose controller holds it), then stop
        on SIGTERM/SIGHUP as on Ctrl-C."""
        lock = lock_report_dir(report_dir) if report_dir is not None else None
        return cls(stop_on_signals(), lock)

    def release(self) -> None:
        if self._restore_signals is not None:
            self._restore_signals()
            self._restore_signals = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def lock_report_dir(path: Path) -> IO[str]:
    """Hold the report directory ``path`` for this run (checked writable first); another run
    holding it is one usage error naming that run and the fix. Close the handle to release."""
    check_writable_dir(path, "--zimage-report-dir")
    handle = (path / REPORT_LOCK).open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        other = handle.read().strip() or "another pytest run"
        handle.close()
        raise pytest.UsageError(
            f"--zimage-report-dir {path}: {other} is writing there now; wait for it to "
            "end, or give this run its own --zimage-report-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"the pytest run with pid {os.getpid()}")
    handle.flush()
    return handle


def check_writable_dir(path: Path, option: str) -> None:
    """A directory the run will write into, checked before any generation: a file there, or
    no permission, is one usage error, not an INTERNALERROR after the images are made."""
    if path.exists() and not path.is_dir():
        raise pytest.UsageError(f"{option} {path}: is a file, not a directory; pass a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise pytest.UsageError(
            f"{option} {path}: cannot write there ({reason}); pass a writable directory"
        ) from None
