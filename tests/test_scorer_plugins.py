"""A scorer from outside the repository reaches every output, with no code beyond the scorer.

``tests/examples/zimage_brightness`` is a user's package that registers ``brightness`` through
the ``pytest_zimage_quality.scorers`` entry point; it is installed with pip into a temporary
``--target`` (its dist-info carries the entry point) put on PYTHONPATH.
``tests/examples/conftest_scorer.py`` registers ``pixel_diff`` through the
``pytest_zimage_register_scorers`` hook. One dry run carries both (one run, to keep the test
short), and each column is asserted in the terminal, summary.json, report.html and JUnit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import REPO, write_small_suite

EXAMPLES = Path(__file__).parent / "examples"


def _install(tmp_path: Path) -> Path:
    source = tmp_path / "src-copy"
    shutil.copytree(EXAMPLES / "zimage_brightness", source)  # the build writes beside it
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", "--target", str(target), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert list(target.glob("zimage_brightness-*.dist-info/entry_points.txt"))
    return target


@pytest.mark.slow
def test_scorers_from_an_installed_package_and_a_conftest_reach_every_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _install(pytester.path)
    suite = write_small_suite(pytester.path)
    pytester.makeconftest((EXAMPLES / "conftest_scorer.py").read_text(encoding="utf-8"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(site)]))
    report = pytester.path / "report"
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", str(suite), "--zimage-host=simulated", "--zimage-weights=random",
        "--zimage-prompts=cat,sign", "--zimage-seeds=1,2", f"--zimage-report-dir={report}",
        f"--zimage-cache-dir={pytester.path / 'cache'}", f"--junitxml={junit}",
    )  # fmt: skip
    result.assert_outcomes(passed=12)  # 2 prompts x 3 configs x 2 seeds

    # terminal: one column each
    result.stdout.re_match_lines([r".*CLIPScore ↑.*LPIPS ↓.*Pixel diff ↓.*Brightness ↑"])

    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    metrics = {m["name"]: m for m in summary["metrics"]}
    assert metrics["brightness"]["facts"]["package"] == "zimage-brightness 0.1.0"
    assert metrics["pixel_diff"]["kind"] == "reference_based"
    assert metrics["pixel_diff"]["higher_is_better"] is False
    fp8 = next(c for c in summary["suites"][0]["configs"] if c["key"] == "fp8")
    assert 0 < fp8["metrics"]["brightness"]["mean"] < 1
    assert fp8["metrics"]["brightness"]["delta"] is not None  # paired with BF16's images
    assert fp8["metrics"]["pixel_diff"]["mean"] > 0

    html = (report / "report.html").read_text(encoding="utf-8")
    assert "Brightness ↑" in html
    assert "Pixel diff ↓" in html

    cases = ET.parse(junit).getroot().iter("testcase")
    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in cases
    }
    candidate = next(v for k, v in props.items() if k and "fp8" in k)
    assert 0 < float(candidate["zimage_metric_brightness"] or "nan") < 1
    assert float(candidate["zimage_metric_pixel_diff"] or "nan") > 0
    assert "zimage_reference_metric_brightness" in candidate
