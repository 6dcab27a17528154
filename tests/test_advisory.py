"""ADVISORY mode says so in every output: terminal, summary.json, report.html, JUnit (each case too)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO, more_prompts, write_small_suite
from tests.helpers.doubles import CONFTEST

pytestmark = pytest.mark.slow


def test_every_output_of_an_advisory_run_says_advisory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, zimage_fake_comfyui: FakeComfyUI
) -> None:
    write_small_suite(pytester.path, extra=more_prompts(3))
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    report = pytester.path / "report"
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        f"--zimage-host={zimage_fake_comfyui.url}",
        f"--zimage-report-dir={report}",
        f"--zimage-cache-dir={pytester.path / 'cache'}",
        "--zimage-configs=bf16,fp8",
        "--zimage-seeds=1",
        "--zimage-advisory",
        f"--junitxml={junit}",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["zimage: ADVISORY*", "zimage gate: ADVISORY*"])
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    assert any(b.startswith("ADVISORY") for b in summary["banners"])
    assert summary["exit"]["advisory"] is True
    assert "ADVISORY" in (report / "report.html").read_text(encoding="utf-8")
    root = ET.parse(junit).getroot()
    suite_props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert suite_props["zimage_gate_mode"] == "ADVISORY"
    cases = list(root.iter("testcase"))
    assert len(cases) == 12
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props.get("zimage_gate_mode") == "ADVISORY", case.get("name")


def test_cases_of_an_applied_gate_say_applied(pytester: pytest.Pytester) -> None:
    write_small_suite(pytester.path, extra=more_prompts(3))
    junit = pytester.path / "junit.xml"
    # no host: every case skips, and its JUnit entry still names the gate's mode
    pytester.runpytest("-p", "no:randomly", f"--junitxml={junit}")
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == 54
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props.get("zimage_gate_mode") == "applied"


def test_python_tests_over_the_suites_cases_name_the_gates_mode_too(
    pytester: pytest.Pytester,
) -> None:
    suite = write_small_suite(pytester.path)
    pytester.makepyfile(test_custom="def test_case(zimage_case):\n    assert zimage_case.seed\n")
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "-p",
        "no:randomly",
        f"--zimage-suite={suite}",
        "--zimage-advisory",
        f"--junitxml={junit}",
        "test_custom.py",
    )
    result.assert_outcomes(passed=27)
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert len(cases) == 27
    for case in cases:
        props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
        assert props == [("zimage_gate_mode", "ADVISORY")], case.get("name")
