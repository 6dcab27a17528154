"""Comparison with a baseline run: loading, lanes, Δ then → now, new/inherited labels, history."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_zimage_quality.baseline import (
    BaselineError,
    compare,
    config_passes,
    load_baseline,
    load_history,
)
from pytest_zimage_quality.provenance import Lane
from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO, more_prompts, write_small_suite
from tests.helpers.doubles import CONFTEST

H100 = {
    "url": "http://gpu:8188",
    "comfyui_version": "0.18.1",
    "python_version": "3.11.7 (main) [GCC 12.2.0]",
    "pytorch_version": "2.14.1+cu130",
    "os": "linux",
    "devices": [{"name": "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync", "type": "cuda"}],
    "gpu_name": "NVIDIA H100 80GB HBM3",
}
PROMPTS = ("photo", "text")


def summary(
    verdicts: dict[str, str],
    *,
    run_id: str = "run-now",
    created: str = "2026-11-28T18:00:00Z",
    diffs: dict[str, float] | None = None,
    server: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A summary.json shaped like the plugin writes it (only what the comparison reads)."""
    diffs = diffs or {}
    configs: list[dict[str, Any]] = [
        {"key": "bf16", "label": "BF16", "role": "reference", "verdict": "reference", "gate": None}
    ]
    for key, verdict in verdicts.items():
        diff = diffs.get(key, -0.002)
        configs.append(
            {
                "key": key,
                "label": key.upper(),
                "role": "candidate",
                "verdict": verdict,
                "gate": {"mean_diff": diff, "lower_bound": diff - 0.004},
            }
        )
    prompts = [
        {
            "key": prompt,
            "text": prompt,
            "tags": [],
            "cells": {
                "bf16": {"n": 3, "clipscore_mean": 0.3},
                **{
                    key: {"n": 3, "clipscore_mean": 0.3, "delta": diffs.get(key, -0.002) * (i + 1)}
                    for key in verdicts
                },
            },
        }
        for i, prompt in enumerate(PROMPTS)
    ]
    return {
        "schema_version": 1,
        "plugin": "pytest-zimage-quality",
        "run_id": run_id,
        "created": created,
        "results_file": "results.jsonl",
        "environment": {"servers": [server or H100]},
        "suites": [
            {"name": "quant", "reference": {"key": "bf16"}, "configs": configs, "prompts": prompts}
        ],
    }


def cases(outcomes: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"suite": "quant", "case_id": case, "outcome": outcome}
        for case, outcome in outcomes.items()
    ]


def store(directory: Path, data: dict[str, Any], outcomes: dict[str, str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(json.dumps(data))
    if outcomes is not None:
        lines = (json.dumps(row) for row in cases(outcomes))
        (directory / "results.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def test_a_config_that_passed_then_and_fails_now_is_new(tmp_path: Path) -> None:
    base = store(
        tmp_path / "main",
        summary({"fp8": "pass", "nvfp4": "fail"}, run_id="run-main", diffs={"fp8": -0.001}),
        {"photo-fp8-s1": "passed", "photo-nvfp4-s1": "failed", "text-fp8-s1": "error"},
    )
    now = summary({"fp8": "fail", "nvfp4": "fail"}, diffs={"fp8": -0.02})
    current = cases(
        {
            "photo-fp8-s1": "failed",
            "photo-nvfp4-s1": "failed",
            "text-fp8-s1": "failed",
            "anime-fp8-s1": "failed",
            "photo-bf16-s1": "passed",
            "text-nvfp4-s1": "error",
        }
    )
    comparison = compare(load_baseline(base), now, current)
    fp8, nvfp4 = comparison.configs
    assert (fp8.config, fp8.verdict_then, fp8.verdict_now, fp8.status) == (
        "fp8",
        "pass",
        "fail",
        "new",
    )
    assert fp8.change == pytest.approx(-0.019)
    assert nvfp4.status == "inherited"
    labels = {c.case_id: c.status for c in comparison.cases}
    assert labels == {
        "photo-fp8-s1": "new",
        "photo-nvfp4-s1": "inherited",
        "text-fp8-s1": "no baseline",  # it errored in the baseline: never judged there
        "anime-fp8-s1": "no baseline",  # not in the baseline at all
    }  # the erroring case is infrastructure, not a failure: not labelled
    assert comparison.counts() == {"new": 2, "inherited": 2, "no baseline": 2}
    prompt = {(p.config, p.prompt): p for p in comparison.prompts}[("fp8", "text")]
    assert prompt.delta_then == pytest.approx(-0.002)
    assert prompt.delta_now == pytest.approx(-0.04)
    assert prompt.change == pytest.approx(-0.038)
    data = comparison.to_dict()
    assert data["run_id"] == "run-main"
    assert data["lane_compatible"] is True
    assert data["configs"][0]["status"] == "new"
    json.dumps(data)


def test_passing_configs_get_no_label_and_unjudged_baselines_say_so(tmp_path: Path) -> None:
    base = store(
        tmp_path,
        summary({"fp8": "pass", "nvfp4": "no data", "q4": "inconclusive"}),
        {},
    )
    now = summary({"fp8": "pass", "nvfp4": "fail", "q4": "insufficient data", "new": "fail"})
    by_key = {c.config: c for c in compare(load_baseline(base), now, []).configs}
    assert by_key["fp8"].status is None
    assert by_key["nvfp4"].status == "no baseline"
    assert by_key["q4"].status == "inherited"
    assert by_key["new"].status == "no baseline"
    assert by_key["new"].verdict_then is None
    assert by_key["new"].change is None


def test_issue_11_verdict_names_are_understood(tmp_path: Path) -> None:
    assert config_passes("NON-INFERIOR")
    assert config_passes("pass")
    assert not config_passes("INCONCLUSIVE")
    base = store(tmp_path, summary({"fp8": "NON-INFERIOR", "q4": "INFERIOR", "q3": "INCOMPLETE"}))
    now = summary({"fp8": "INFERIOR", "q4": "INCOMPLETE", "q3": "INFERIOR"})
    by_key = {c.config: c for c in compare(load_baseline(base), now, []).configs}
    assert by_key["fp8"].status == "new"
    assert by_key["q4"].status == "inherited"  # it failed in the baseline too
    assert by_key["q3"].status == "no baseline"  # the baseline never judged it
    # a summary carrying both names: the decision wins over schema 1's verdict
    both = summary({"fp8": "inconclusive"})
    both["suites"][0]["configs"][1]["decision"] = "non-inferior"
    (change,) = compare(load_baseline(base), both, []).configs[:1]
    assert (change.verdict_now, change.status) == ("non-inferior", None)


def test_a_baseline_from_another_lane_is_refused_unless_overridden(tmp_path: Path) -> None:
    h200 = {**H100, "devices": [{"name": "cuda:0 NVIDIA H200", "type": "cuda"}]}
    base = load_baseline(store(tmp_path, summary({"fp8": "pass"}, server=h200)))
    now = summary({"fp8": "fail"})
    with pytest.raises(BaselineError) as raised:
        compare(base, now, [])
    message = str(raised.value)
    assert "ran on another lane" in message
    assert "GPU: NVIDIA H200 (baseline) ≠ NVIDIA H100 80GB HBM3 (this run)" in message
    assert "--zimage-baseline-any-lane" in message
    comparison = compare(base, now, [], any_lane=True)
    assert not comparison.lane_compatible
    assert comparison.configs[0].status == "new"
    assert any("another lane, compared on request" in note for note in comparison.notes)


def test_a_baseline_with_provenance_uses_its_recorded_lanes(tmp_path: Path) -> None:
    lane = Lane("NVIDIA H100 80GB HBM3", "0.18.1", "", "2.14.1", "13.0")
    data = summary({"fp8": "pass"}, server={})
    data["provenance"] = {"lanes": [lane.to_dict()]}
    comparison = compare(load_baseline(store(tmp_path, data)), summary({"fp8": "pass"}), [])
    assert comparison.lane_compatible


def test_missing_per_case_results_are_named(tmp_path: Path) -> None:
    base = load_baseline(store(tmp_path, summary({"fp8": "pass"})))
    assert base.cases is None
    comparison = compare(base, summary({"fp8": "fail"}), cases({"photo-fp8-s1": "failed"}))
    assert comparison.cases[0].status == "no baseline"
    assert any("per-case results" in note for note in comparison.notes)


def test_per_case_results_in_the_summary_itself_are_used(tmp_path: Path) -> None:
    data = summary({"fp8": "pass"})
    data["cases"] = [{"suite": "quant", "case_id": "photo-fp8-s1", "verdict": "passed"}]
    base = load_baseline(store(tmp_path, data))
    assert base.cases == {("quant", "photo-fp8-s1"): "passed"}


def test_a_torn_last_line_of_results_is_skipped(tmp_path: Path) -> None:
    store(tmp_path, summary({"fp8": "pass"}), {"photo-fp8-s1": "passed"})
    with (tmp_path / "results.jsonl").open("a") as f:
        f.write('{"suite": "quant", "case_id": "text-fp8')
    assert load_baseline(tmp_path).cases == {("quant", "photo-fp8-s1"): "passed"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON (line 1"),
        ('{"plugin": "other"}', "not a pytest-zimage-quality summary.json"),
        ("[1, 2]", "not a pytest-zimage-quality summary.json"),
        (b"\xff\xfe", "cannot be read"),
    ],
)
def test_a_bad_baseline_is_one_clear_line(
    tmp_path: Path, content: str | bytes | None, message: str
) -> None:
    path = tmp_path / "summary.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError) as raised:
        load_baseline(path)
    assert message in raised.value.message
    assert "\n" not in raised.value.message
    assert str(path) in raised.value.message
    assert "summary.json or its report directory" in (raised.value.hint or "")


def test_a_report_directory_without_a_summary(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match=r"holds no summary\.json"):
        load_baseline(tmp_path)
    store(tmp_path / "latest", summary({"fp8": "pass"}))
    assert load_baseline(tmp_path).path == tmp_path / "latest" / "summary.json"


def test_history_orders_runs_and_skips_broken_files(tmp_path: Path) -> None:
    history = tmp_path / "history"
    for day, verdict, diff in ((3, "fail", -0.02), (1, "pass", -0.001), (2, "pass", -0.004)):
        data = summary(
            {"fp8": verdict},
            run_id=f"run-{day}",
            created=f"2026-11-0{day}T00:00:00Z",
            diffs={"fp8": diff},
        )
        if day == 2:
            store(history / f"run-{day}", data)  # a stored report directory
        else:
            (history / f"run-{day}.json").parent.mkdir(parents=True, exist_ok=True)
            (history / f"run-{day}.json").write_text(json.dumps(data))
    (history / "broken.json").write_text("{")
    now = summary({"fp8": "pass"}, run_id="run-4", created="2026-11-04T00:00:00Z")
    series, notes = load_history(history, current=now)
    points = series[("quant", "fp8")]
    assert [p.run_id for p in points] == ["run-1", "run-2", "run-3", "run-4"]
    assert [p.verdict for p in points] == ["pass", "pass", "fail", "pass"]
    assert points[2].mean_diff == pytest.approx(-0.02)
    assert points[2].to_dict()["lower_bound"] == pytest.approx(-0.024)
    assert ("quant", "bf16") not in series
    assert len(notes) == 1
    assert "broken.json" in notes[0]
    assert "not valid JSON" in notes[0]
    with pytest.raises(BaselineError, match="not a directory"):
        load_history(tmp_path / "absent")


# -- through pytest, against the fake server ---------------------------------------------------

BROKEN = "z_image_turbo_nvfp4.safetensors"
PROMPT_KEYS = ("cat", "ink", "sign", "dog", "clock", "poster")


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    write_small_suite(pytester.path, extra=more_prompts(3))  # six prompts: a verdict needs five
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the inner conftest imports tests.doubles
    return pytester


def run_against(
    project: pytest.Pytester, fake: FakeComfyUI, name: str, *args: str
) -> pytest.RunResult:
    return project.runpytest_subprocess(
        "-p",
        "no:randomly",
        f"--zimage-host={fake.url}",
        f"--zimage-report-dir={project.path / name}",
        f"--zimage-cache-dir={project.path / name / 'cache'}",
        *args,
    )


@pytest.mark.slow
def test_a_broken_candidate_is_a_new_failure_against_main(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Callable[..., FakeComfyUI]
) -> None:
    main = run_against(project, zimage_fake_comfyui_factory(), "main")
    main.assert_outcomes(passed=54)
    broken = zimage_fake_comfyui_factory(broken_models=[BROKEN], broken_style="noise")
    markdown = project.path / "pr.md"
    pr = run_against(
        project,
        broken,
        "pr",
        f"--zimage-baseline={project.path / 'main'}",
        f"--zimage-markdown={markdown}",
    )
    pr.assert_outcomes(passed=36, failed=18)
    pr.stdout.fnmatch_lines(
        [
            "zimage baseline: NVFP4 non-inferior → inferior, Δ * → * (change -*) [[]new[]]",
            "zimage baseline *: 19 new, 0 inherited, 0 without a baseline (failing configs and cases)",
        ]
    )
    data = json.loads((project.path / "pr" / "summary.json").read_text(encoding="utf-8"))
    jsonschema.validate(data, json.loads((REPO / "docs" / "summary.schema.json").read_text()))
    assert data["baseline"]["counts"] == {"new": 19, "inherited": 0, "no baseline": 0}
    assert {(c["case_id"], c["outcome_then"], c["status"]) for c in data["baseline"]["cases"]} == {
        (f"{p}-nvfp4-s{s}", "passed", "new") for p in PROMPT_KEYS for s in (1, 2, 3)
    }
    text = markdown.read_text(encoding="utf-8")
    assert "Failures against the baseline: **19 new**" in text
    assert "| NVFP4 | non-inferior → inferior |" in text, text


@pytest.mark.slow
def test_a_baseline_from_another_gpu_is_refused_unless_asked(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Callable[..., FakeComfyUI]
) -> None:
    run_against(project, zimage_fake_comfyui_factory(), "main").assert_outcomes(passed=54)
    h200 = zimage_fake_comfyui_factory(device="cuda:0 NVIDIA H200", vram_total=140 << 30)
    baseline = f"--zimage-baseline={project.path / 'main' / 'summary.json'}"
    refused = run_against(project, h200, "pr", baseline)
    refused.assert_outcomes(passed=54)
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stdout.fnmatch_lines(
        [
            "zimage baseline REFUSED: baseline * ran on another lane*GPU: cpu (baseline) ≠ NVIDIA H200 (this run)*"
        ]
    )
    data = json.loads((project.path / "pr" / "summary.json").read_text(encoding="utf-8"))
    assert "another lane" in data["baseline"]["refused"]
    allowed = run_against(project, h200, "pr2", baseline, "--zimage-baseline-any-lane")
    assert allowed.ret == pytest.ExitCode.OK
    allowed.stdout.fnmatch_lines(
        ["zimage baseline: baseline from another lane, compared on request*"]
    )


@pytest.mark.slow
def test_a_missing_baseline_stops_the_run_before_it_starts(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "--zimage-host=127.0.0.1:9", f"--zimage-baseline={project.path / 'nope.json'}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --zimage-baseline: baseline */nope.json: no such file*"])
    assert "Traceback" not in result.stderr.str()
