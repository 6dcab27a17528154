"""A whole plugin run in its own Python process, over the small suite of six prompts."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from .doubles import CONFTEST
from .suites import REPO, more_prompts, write_small_suite

__all__ = ["run_plugin"]


def run_plugin(
    directory: Path,
    *args: str,
    cache_provider: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Write the small suite (six prompts: a verdict needs five) and the scorer doubles'
    conftest into ``directory``, then run pytest there with its report and cache dirs inside
    it; ``cache_provider`` keeps pytest's own cache (learnt speeds live there)."""
    write_small_suite(directory, extra=more_prompts(3))
    (directory / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    environment.pop("ZIMAGE_HOST", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            *(() if cache_provider else ("-p", "no:cacheprovider")),
            f"--zimage-report-dir={directory / 'report'}",
            f"--zimage-cache-dir={directory / 'cache'}",
            *args,
        ],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
