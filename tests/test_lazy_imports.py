"""The plugin is loaded by every pytest run: loading it must not import the heavy stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "torch",
    "torchvision",
    "open_clip",
    "lpips",
    "httpx",
    "websockets",
    "aiohttp",
    "scipy",
    "jinja2",
    "PIL",
    "numpy",
)

PROBE = """
import sys, pytest
code = pytest.main({args!r})
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print("HEAVY=" + ",".join(heavy))
"""


def run_probe(tmp_path: Path, args: list[str]) -> tuple[str, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=args, heavy=HEAVY)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("HEAVY=")]
    assert line, result.stdout + result.stderr
    return result.stdout, {m for m in line[-1][len("HEAVY=") :].split(",") if m}


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest_zimage_quality.plugin"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if "|" in line
    }
    assert "pytest_zimage_quality" in imported
    assert not imported & set(HEAVY), imported & set(HEAVY)


def test_pytest_help_pays_nothing(tmp_path: Path) -> None:
    out, heavy = run_probe(tmp_path, ["--help", "-p", "no:randomly"])  # randomly imports numpy
    assert "--zimage-host" in out
    assert not heavy


def test_unrelated_run_pays_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert 1 + 1 == 2\n")
    out, heavy = run_probe(tmp_path, ["-q", "-p", "no:randomly", "-p", "no:xdist"])
    assert "1 passed" in out
    assert not heavy


@pytest.mark.parametrize("args", [["--collect-only", "-q"], ["-q", "-rs"]])
def test_collecting_or_skipping_a_suite_pays_nothing(tmp_path: Path, args: list[str]) -> None:
    from tests.helpers import write_small_suite

    write_small_suite(tmp_path)
    out, heavy = run_probe(tmp_path, [*args, "-p", "no:randomly", "-p", "no:xdist"])
    assert "27" in out
    assert not heavy
