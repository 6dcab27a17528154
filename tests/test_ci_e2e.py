"""End to end for the CI-native outputs (issue 14) through pytester against the fake ComfyUI:
a host that dies mid-run ends in errors (not failures) with the retryable exit status.

Each inner run is a subprocess, as in tests/test_plugin_e2e.py.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from markdown_it import MarkdownIt

from pytest_zimage_quality.outcomes import INFRA_EXIT_STATUS
from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO, more_prompts, write_small_suite
from tests.helpers.browser import chromium, dump_dom  # noqa: F401 - the fixture
from tests.helpers.doubles import CONFTEST

pytestmark = pytest.mark.slow

Fake = Callable[..., FakeComfyUI]
SCHEMA = json.loads((REPO / "docs" / "summary.schema.json").read_text(encoding="utf-8"))


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    write_small_suite(pytester.path)
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return pytester


def run(project: pytest.Pytester, fake: FakeComfyUI, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess(
        "-p",
        "no:randomly",
        f"--zimage-host={fake.url}",
        f"--zimage-report-dir={project.path / 'report'}",
        f"--zimage-cache-dir={project.path / 'cache'}",
        *args,
    )


def summary(project: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (project.path / "report" / "summary.json").read_text(encoding="utf-8")
    )
    jsonschema.validate(data, SCHEMA)
    return data


def _dies_at_first_candidate(fake: FakeComfyUI) -> None:
    """The server goes away (for longer than the run) when the first fp8 prompt starts."""
    fake.faults.restart(
        downtime=120.0, when=lambda run: any("fp8" in name for name in run.model_files)
    )


@pytest.mark.parametrize("infra_status", [True, False])
def test_a_host_that_dies_ends_in_errors_with_the_distinct_status(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake, infra_status: bool
) -> None:
    fake = zimage_fake_comfyui_factory()
    _dies_at_first_candidate(fake)
    args = ["--zimage-timeout=5", f"--junitxml={project.path / 'junit.xml'}"]
    if infra_status:
        args.append("--zimage-infra-exit-status")
    result = run(project, fake, *args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    assert outcomes["errors"] >= 9  # at least every fp8 and nvfp4 case after the death
    assert outcomes["passed"] >= 1
    assert result.ret == (INFRA_EXIT_STATUS if infra_status else pytest.ExitCode.TESTS_FAILED)
    last = result.stdout.lines[-1]
    zimage_line = next(line for line in result.stdout.lines if "zimage verdict:" in line)
    assert zimage_line.startswith("zimage verdict: ERROR")
    assert "0 failed (quality)" in zimage_line
    assert "infrastructure" in zimage_line
    if infra_status:
        assert f"exit status {INFRA_EXIT_STATUS}" in zimage_line
    assert "error" in last
    data = summary(project)["verdicts"]
    assert data["verdict"] == "error"
    assert data["only_infrastructure"] is True
    assert data["counts"]["failed"] == 0
    assert data["configs"]["fp8"] == "error"
    assert set(data["error_kinds"].values()) == {"infrastructure"}
    assert data["exit_status"] == result.ret
    # JUnit: each errored case is an <error> (not a <failure>) with its verdict property
    tree = ET.parse(project.path / "junit.xml")
    cases = tree.getroot().iter("testcase")
    errored = [c for c in cases if c.find("error") is not None]
    assert len(errored) == outcomes["errors"]
    assert not any(c.find("failure") is not None for c in tree.getroot().iter("testcase"))
    props = {p.get("name"): p.get("value") for p in errored[0].iter("property") if p.get("name")}
    assert props["zimage_verdict"] == "error"
    assert props["zimage_error_kind"] == "infrastructure"


def test_a_quality_failure_stays_a_failure_and_keeps_status_1(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    write_small_suite(project.path, extra=more_prompts(3))  # six prompts: a verdict needs five
    fake = zimage_fake_comfyui_factory(
        broken_models=["z_image_turbo_nvfp4.safetensors"], broken_style="noise"
    )
    result = run(project, fake, "--zimage-infra-exit-status")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) > 0
    assert outcomes.get("errors", 0) == 0
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    data = summary(project)["verdicts"]
    assert data["verdict"] == "failed"
    assert data["configs"]["nvfp4"] == "failed"
    assert data["configs"]["fp8"] == "passed"


def test_a_cached_reference_from_another_lane_is_regenerated(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    fake = zimage_fake_comfyui_factory()
    first = run(project, fake, "--zimage-configs=bf16,fp8")
    first.assert_outcomes(passed=18)
    lane_before = summary(project)["provenance"]["lane"]
    # the same server now reports another torch build: another lane
    fake.faults.report_system(pytorch_version="2.9.0+cu130")
    second = run(project, fake, "--zimage-configs=bf16,fp8")
    second.assert_outcomes(passed=18)
    data = summary(project)
    prov = data["provenance"]
    assert prov["lane"] != lane_before
    assert prov["lanes"][0]["pytorch_version"] == "2.9.0"
    assert len(prov["regenerated_other_lane"]) == 18  # every cached image, references included
    assert all("another lane" in note for note in prov["regenerated_other_lane"])
    records = [
        json.loads(line)
        for line in (project.path / "report" / "results.jsonl").read_text().splitlines()
    ]
    assert not [r for r in records if r.get("cached") == "plugin"]  # nothing paired across lanes
    second.stdout.fnmatch_lines(["*zimage: 18 cached image(s) were made on another lane*"])
    # on the same lane again, the cache serves them
    third = run(project, fake, "--zimage-configs=bf16,fp8")
    third.assert_outcomes(passed=18)
    assert summary(project)["provenance"]["regenerated_other_lane"] == []
    again = [
        json.loads(line)
        for line in (project.path / "report" / "results.jsonl").read_text().splitlines()
    ]
    assert [r for r in again if r.get("cached") == "plugin"]


def test_peak_vram_per_config_beside_the_speedup(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    fake = zimage_fake_comfyui_factory(image_latency=0.3)
    md = project.path / "summary.md"
    result = run(project, fake, "--zimage-vram-interval=0.05", f"--zimage-markdown={md}")
    result.assert_outcomes(passed=27)
    vram = summary(project)["vram"]
    assert set(vram) == {"bf16", "fp8", "nvfp4"}
    for entry in vram.values():
        assert entry["n_samples"] > 0
        # the fake reports 0.5 GiB + loaded model files + 1 GiB per image being sampled
        assert entry["peak_device_bytes"] >= 1.5 * 1024**3
    assert vram["bf16"]["ratio_vs_reference"] == 1.0
    assert vram["fp8"]["change_vs_reference_bytes"] == (
        vram["fp8"]["peak_device_bytes"] - vram["bf16"]["peak_device_bytes"]
    )
    result.stdout.fnmatch_lines(
        ["zimage speed and memory:", "*config*speedup*peak VRAM*", "*BF16*ref*GiB*reference*"]
    )
    text = md.read_text(encoding="utf-8")
    assert "### Speed and memory" in text
    assert "| NVFP4 |" in text


def test_vram_sampling_can_be_turned_off(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    result = run(project, zimage_fake_comfyui, "--zimage-vram-interval=0", "--zimage-configs=bf16")
    result.assert_outcomes(passed=9)
    assert summary(project)["vram"] is None
    assert "zimage speed and memory" not in result.stdout.str()


def test_a_refresh_on_a_deterministic_server_measures_a_noise_floor_of_0(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    first = run(project, zimage_fake_comfyui, "--zimage-configs=bf16,fp8")
    first.assert_outcomes(passed=18)
    assert summary(project)["noise_floor"] is None  # nothing regenerated, nothing measured
    refresh = run(project, zimage_fake_comfyui, "--zimage-configs=bf16,fp8", "--zimage-refresh")
    refresh.assert_outcomes(passed=18)
    floor = summary(project)["noise_floor"]
    assert floor["n_pairs"] == 18
    assert floor["n_identical"] == 18
    assert floor["deterministic"] is True
    assert floor["clip_floor"] == 0.0
    assert floor["lpips_max"] == 0.0
    assert floor["margin_warning"] is None
    refresh.stdout.fnmatch_lines(
        ["zimage noise floor (determinism check): 18 of 18 regenerated images identical*0.0000*"]
    )
    recheck = run(project, zimage_fake_comfyui, "--zimage-configs=bf16,fp8", "--zimage-recheck=2")
    recheck.assert_outcomes(passed=18)
    floor = summary(project)["noise_floor"]
    assert floor["n_pairs"] == 2
    assert floor["clip_floor"] == 0.0


def test_a_new_failure_against_the_baseline_with_history_and_markdown_in_chromium(
    project: pytest.Pytester,
    zimage_fake_comfyui_factory: Fake,
    chromium: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    write_small_suite(project.path, extra=more_prompts(3))  # six prompts: a verdict needs five
    history = project.path / "history"
    history.mkdir()
    good = zimage_fake_comfyui_factory()
    base = run(project, good, f"--zimage-history={history}")
    base.assert_outcomes(passed=54)
    stored = project.path / "baseline"
    (project.path / "report").rename(stored)
    # the candidate changed: NVFP4 now draws noise
    bad = zimage_fake_comfyui_factory(
        broken_models=["z_image_turbo_nvfp4.safetensors"], broken_style="noise"
    )
    md = project.path / "summary.md"
    now = run(
        project,
        bad,
        f"--zimage-baseline={stored}",
        f"--zimage-history={history}",
        f"--zimage-markdown={md}",
        f"--zimage-cache-dir={project.path / 'cache2'}",
    )
    assert now.ret == pytest.ExitCode.TESTS_FAILED
    data = summary(project)
    nv = next(c for c in data["baseline"]["configs"] if c["config"] == "nvfp4")
    assert nv["status"] == "new"
    assert nv["verdict_then"] == "non-inferior"
    assert len(list(history.glob("*.json"))) == 2
    html = (project.path / "report" / "report.html").read_text(encoding="utf-8")
    assert 'id="ci"' in html
    assert "Since the baseline" in html
    assert "History: Δ and verdict across stored runs" in html
    # the NVFP4 chart: two runs, the second coloured as a failure
    page = project.path / "report" / "report.html"
    dom = dump_dom(chromium, page, tmp_path)
    figures = [t for t in dom.tags if t[0] == "figure"]
    assert figures
    circles = [
        t for t in dom.tags if t[0] == "circle" and (t[1].get("class") or "").startswith("verdict-")
    ]
    assert len(circles) == 4  # two candidate configs x two stored runs
    classes = [c[1]["class"] for c in circles]
    assert classes.count("verdict-inferior") == 1  # NVFP4 now
    assert classes.count("verdict-non-inferior") == 3
    assert {c[1]["fill"] for c in circles if c[1]["class"] == "verdict-inferior"} == {"#c0392b"}
    # the Markdown renders in a real browser with the failure labelled new
    text = md.read_text(encoding="utf-8")
    body = MarkdownIt("commonmark").enable("table").render(text)
    md_page = tmp_path / "summary.html"
    md_page.write_text(f"<!DOCTYPE html><html><head><title>md</title></head><body>{body}</body>")
    md_dom = dump_dom(chromium, md_page, tmp_path)
    assert md_dom.title == "md"
    assert "new" in md_dom.all_text
    assert "NVFP4" in md_dom.all_text
    assert [t for t in md_dom.tags if t[0] == "table"]
