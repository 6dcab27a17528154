"""The fake's private temporary directories, and the removal of those a killed process left.

A ``TemporaryDirectory`` is removed by its finalizer, which never runs after SIGKILL (an
out-of-memory kill, a CI job's hard timeout). So each directory carries its owner's pid and
host in a small file, and every new fake first removes the directories whose owner on this
host is gone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from pathlib import Path

__all__ = ["OWNER_FILE", "PREFIX", "make_owned_dir", "reap_orphans"]

PREFIX = "fake-comfyui-"
OWNER_FILE = ".fake-comfyui-owner"


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _owner(directory: Path) -> tuple[int, str] | None:
    try:
        pid, host = (directory / OWNER_FILE).read_text("utf-8").split(" ", 1)
        return int(pid), host.strip()
    except (OSError, ValueError):
        return None


def reap_orphans(root: Path | None = None) -> list[Path]:
    """Remove ``fake-comfyui-*`` directories under ``root`` (the system temp dir) whose owner
    process on this host has died. Directories without an owner file are left alone."""
    base = Path(root if root is not None else tempfile.gettempdir())
    host = socket.gethostname()
    removed: list[Path] = []
    try:
        candidates = [p for p in base.iterdir() if p.name.startswith(PREFIX) and p.is_dir()]
    except OSError:
        return removed
    for directory in candidates:
        owner = _owner(directory)
        if owner is None or owner[1] != host or _alive(owner[0]):
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(directory)
            removed.append(directory)
    return removed


def make_owned_dir() -> Path:
    """A fresh ``fake-comfyui-*`` temporary directory marked with this process's pid."""
    reap_orphans()
    directory = Path(tempfile.mkdtemp(prefix=PREFIX))
    (directory / OWNER_FILE).write_text(f"{os.getpid()} {socket.gethostname()}", "utf-8")
    return directory
