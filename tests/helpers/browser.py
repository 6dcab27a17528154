"""Headless Chromium for the report tests: the ``chromium`` fixture, a DOM dump, a screenshot.

No Python browser driver: ``chromium --headless --dump-dom`` prints the DOM after the page has
loaded and any script has run. Skipped, with the reason, when no Chromium is on PATH, unless
``ZIMAGE_REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .html_reports import DomCounter, parse

__all__ = [
    "CHROMIUM_NAMES",
    "WINDOW",
    "chromium",
    "dump_dom",
    "find_chromium",
    "run_chromium",
    "screenshot",
]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1400, 2400)


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None and os.environ.get("ZIMAGE_REQUIRE_BROWSER") == "1":
        pytest.fail("ZIMAGE_REQUIRE_BROWSER=1 but no Chromium is on PATH (.ci/run installs it)")
    if binary is None:
        pytest.skip(
            f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)}); "
            "install Debian's `chromium` package to run the real-browser report tests"
        )
    return binary


def run_chromium(binary: str, workdir: Path, *args: str) -> str:
    """Run headless Chromium with a throw-away profile; returns its stdout."""
    profile = workdir / f"chromium-profile-{len(list(workdir.glob('chromium-profile-*')))}"
    command = [
        binary,
        "--headless",
        "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        pytest.fail(f"chromium exited {done.returncode}:\n{done.stderr[-3000:]}", pytrace=False)
    return done.stdout


def dump_dom(binary: str, page: Path, workdir: Path) -> DomCounter:
    return parse(run_chromium(binary, workdir, "--dump-dom", page.resolve().as_uri()))


def screenshot(
    binary: str, page: Path, target: Path, workdir: Path, window: tuple[int, int] = WINDOW
) -> Path:
    run_chromium(
        binary,
        workdir,
        f"--screenshot={target}",
        f"--window-size={window[0]},{window[1]}",
        # wait for every image to load and decode before the shot, however loaded the box is
        "--virtual-time-budget=10000",
        "--run-all-compositor-stages-before-draw",
        page.resolve().as_uri(),
    )
    assert target.is_file(), "chromium wrote no screenshot"
    return target
