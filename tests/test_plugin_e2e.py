"""End to end through pytester against the fake ComfyUI: outcomes, messages, gate, exit status.

Each inner run is a subprocess (pytester's in-process runs drop modules first imported inside
a run, which breaks httpx's and scipy's lazy internals on the next run). Scores come from
deterministic doubles injected through the plugin's scorer hooks (tests/helpers/doubles.py);
test_simulated_dry_run.py runs the real open_clip/lpips code paths.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO, write_small_suite
from tests.helpers.doubles import CONFTEST

#: Each test is a whole plugin run in a subprocess (seconds each): deselect with -m "not slow".
pytestmark = pytest.mark.slow

BROKEN = "z_image_turbo_nvfp4.safetensors"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    write_small_suite(pytester.path)
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the inner conftest imports tests.helpers.doubles
    return pytester


Fake = Callable[..., FakeComfyUI]


def run(project: pytest.Pytester, fake: FakeComfyUI, *args: str) -> pytest.RunResult:
    return project.runpytest_subprocess(
        "-p",
        "no:randomly",
        f"--zimage-host={fake.url}",
        f"--zimage-report-dir={project.path / 'report'}",
        f"--zimage-cache-dir={project.path / 'cache'}",
        *args,
    )


SCHEMA = json.loads((REPO / "docs" / "summary.schema.json").read_text(encoding="utf-8"))


def summary(project: pytest.Pytester) -> dict[str, Any]:
    """The run's summary.json, validated against the documented schema."""
    data: dict[str, Any] = json.loads(
        (project.path / "report" / "summary.json").read_text(encoding="utf-8")
    )
    jsonschema.validate(data, SCHEMA)
    return data


def verdicts(project: pytest.Pytester) -> dict[str, str]:
    return {c["label"]: c["verdict"] for c in summary(project)["suites"][0]["configs"]}


def test_clean_run_passes_and_writes_artifacts(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    result = run(project, zimage_fake_comfyui)
    result.assert_outcomes(passed=27)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            f"zimage: host {zimage_fake_comfyui.url}: ComfyUI 0.18.1, cpu, VRAM * GiB (* free)",
            "*zimage quality gate*",
            "config*LPIPS vs BF16*CLIPScore*verdict*",
            "BF16 * 9 *ref*reference*",
            "zimage gate: PASSED",
        ]
    )
    assert verdicts(project) == {"BF16": "reference", "FP8": "pass", "NVFP4": "pass"}
    lines = (project.path / "report" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 27
    record = json.loads(lines[-1])
    for key in (
        "suite",
        "prompt",
        "prompt_text",
        "config",
        "seed",
        "reference",
        "clipscore",
        "lpips",
        "outcome",
        "tolerance",
        "image_path",
        "image_sha256",
        "wall_seconds",
        "server_seconds",
        "cached",
        "host",
        "prompt_id",
        "run_id",
    ):
        assert key in record, key
    assert Path(record["image_path"]).is_file()
    assert (project.path / "report" / "report.html").is_file()
    data = summary(project)
    assert data["exit"] == {
        "gate_ran": True,
        "gate_applied": True,
        "gate_passed": True,
        "failed_configs": [],
        "inconclusive_configs": [],
        "flagged": [],
        "reason": "",
    }
    assert data["environment"]["servers"][0]["comfyui_version"] == "0.18.1"
    assert data["environment"]["scorers"]["clip"]["class"] == "EdgeCLIP"
    assert data["suites"][0]["parameters"]["tolerance"] == {"value": 0.04, "source": "default"}
    assert zimage_fake_comfyui.model_loads == 3
    assert zimage_fake_comfyui.generations == 27


def test_broken_config_fails_its_cases_with_numbers_and_paths(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    fake = zimage_fake_comfyui_factory(broken_models=[BROKEN], broken_style="noise")
    result = run(project, fake)
    result.assert_outcomes(passed=18, failed=9)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*cat-nvfp4-s1: CLIPScore * vs reference bf16 *: delta -0.* is below -tolerance 0.0400 (LPIPS vs reference 0.*)",
            "*  image: *report/images/cat/nvfp4/s1-*.png",
            "*  reference: *report/images/cat/bf16/s1-*.png",
            "zimage gate: FAILED — non-inferiority not shown for NVFP4",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "def runtest" not in result.stdout.str()
    assert verdicts(project)["NVFP4"] == "fail"


def test_a_failing_gate_fails_the_run_even_when_every_case_passes(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    fake = zimage_fake_comfyui_factory(broken_models=[BROKEN], broken_style="noise")
    result = run(project, fake, "--zimage-tolerance=1.0")
    result.assert_outcomes(passed=27)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["zimage gate: FAILED — non-inferiority not shown for NVFP4"])


def test_expected_fail_pair_reports_xfail_and_leaves_the_gate(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    pytester = project
    write_small_suite(
        pytester.path,
        extra='[[expected_fail]]\nprompt = "sign"\nconfig = "nvfp4"\nreason = "FP4 text rendering"\n',
    )
    fake = zimage_fake_comfyui_factory(broken_models=[BROKEN], broken_style="noise")
    result = run(pytester, fake, "-rx", "--zimage-tolerance=0.2", "--zimage-margin=0.2")
    result.assert_outcomes(passed=18, failed=6, xfailed=3)
    result.stdout.fnmatch_lines(["XFAIL zimage_small.toml::sign-nvfp4-s1 - FP4 text rendering"])
    nv = next(c for c in summary(pytester)["suites"][0]["configs"] if c["label"] == "NVFP4")
    assert nv["expected_fail_prompts"] == ["sign"]
    assert nv["gate"]["n_prompts"] == 2


def test_unreachable_host_is_an_error_for_every_case(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(
        "-p", "no:randomly", "--zimage-host=127.0.0.1:9", "--zimage-timeout=5"
    )
    result.assert_outcomes(errors=27)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*http://127.0.0.1:9*", "*hint: *"])
    assert "Traceback" not in result.stdout.str()
    assert "passed" not in result.stdout.lines[-1]


def test_missing_model_file_is_named_before_anything_runs(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    models = {
        "diffusion_models": [
            "z_image_turbo_bf16.safetensors",
            "z_image_turbo_fp8_e4m3fn.safetensors",
        ],
        "text_encoders": ["qwen_3_4b.safetensors"],
        "vae": ["ae.safetensors"],
    }
    fake = zimage_fake_comfyui_factory(models=models)
    result = run(project, fake)
    result.assert_outcomes(errors=27)
    result.stdout.fnmatch_lines(["*NVFP4*z_image_turbo_nvfp4.safetensors*", "*diffusion_models*"])
    assert fake.generations == 0
    assert "Traceback" not in result.stdout.str()


def test_execution_error_fails_only_its_case(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    zimage_fake_comfyui.faults.fail_runs(
        lambda run: run.graph["3"]["inputs"]["seed"] == 2,
        model_file="z_image_turbo_fp8_e4m3fn.safetensors",
        prompt_contains="red sofa",
        message="CUDA error: an illegal memory access was encountered",
        exception_type="RuntimeError",
    )
    result = run(project, zimage_fake_comfyui)
    result.assert_outcomes(passed=26, failed=1)
    result.stdout.fnmatch_lines(["*cat-fp8-s2*", "*RuntimeError*illegal memory access*"])
    assert "Traceback" not in result.stdout.str()


def test_corrupt_png_is_a_clear_failure(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    zimage_fake_comfyui.faults.corrupt_view("truncate", times=1)
    result = run(
        project,
        zimage_fake_comfyui,
        "--zimage-configs=bf16",
        "--zimage-prompts=cat",
        "--zimage-seeds=1",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cat-bf16-s1*", "*PNG*"])
    assert "Traceback" not in result.stdout.str()


def test_partial_selection_generates_only_what_it_needs(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    result = run(project, zimage_fake_comfyui, "-k", "cat and nvfp4")
    result.assert_outcomes(passed=3)
    # the three candidates and the three references they are compared with
    assert zimage_fake_comfyui.generations == 6
    nv = next(c for c in summary(project)["suites"][0]["configs"] if c["label"] == "NVFP4")
    assert nv["n_scored"] == 3
    assert nv["gate"]["n_prompts"] == 1
    assert nv["verdict"] == "insufficient data"


def test_shuffled_tests_still_load_each_config_once(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    result = project.runpytest_subprocess(
        "-p",
        "randomly",
        "--randomly-seed=1234",
        f"--zimage-host={zimage_fake_comfyui.url}",
        f"--zimage-cache-dir={project.path / 'cache'}",
    )
    result.assert_outcomes(passed=27)
    assert zimage_fake_comfyui.model_loads == 3


def test_rerun_reuses_cached_images(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    first = zimage_fake_comfyui_factory()
    run(project, first).assert_outcomes(passed=27)
    assert first.generations == 27
    second = zimage_fake_comfyui_factory()
    result = run(project, second)
    result.assert_outcomes(passed=27)
    assert second.generations == 0
    cached = {
        json.loads(line)["cached"]
        for line in (project.path / "report" / "results.jsonl").read_text().splitlines()
    }
    assert cached == {"plugin"}
    # A truncated cache blob is detected by its hash, reported, and regenerated.
    blob = sorted((project.path / "cache" / "blobs").rglob("*.png"))[0]
    blob.write_bytes(blob.read_bytes()[:100])
    repaired = zimage_fake_comfyui_factory()
    result = run(project, repaired, "-W", "default::pytest_zimage_quality.ZImageWarning")
    result.assert_outcomes(passed=27, warnings=1)
    result.stdout.fnmatch_lines(
        ["*ZImageWarning: image cache entry * discarded: * does not match its sha256*"]
    )
    assert repaired.generations == 1
    # A candidate model file replaced in place (new metadata): only its images are regenerated.
    third = zimage_fake_comfyui_factory()
    third.replace_model_file(BROKEN)
    run(project, third).assert_outcomes(passed=27)
    assert third.generations == 9
    fourth = zimage_fake_comfyui_factory()
    run(project, fourth, "--zimage-refresh").assert_outcomes(passed=27)
    assert fourth.generations == 27


def test_junit_xml_carries_the_scores(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    run(project, zimage_fake_comfyui, "--junitxml=junit.xml").assert_outcomes(passed=27)
    tree = ET.parse(project.path / "junit.xml")
    case = next(c for c in tree.iter("testcase") if c.get("name") == "ink-nvfp4-s2")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert float(props["zimage_clipscore"] or "nan") > 0
    assert float(props["zimage_lpips"] or "nan") >= 0
    assert props["zimage_config"] == "nvfp4"
    assert props["zimage_reference"] == "bf16"


def test_xdist_gives_the_same_gate(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    fake = zimage_fake_comfyui_factory(broken_models=[BROKEN], broken_style="noise")
    serial = run(project, fake, "--zimage-refresh")
    serial_summary = summary(project)
    parallel = run(project, fake, "-n", "2", "--zimage-refresh")
    parallel.assert_outcomes(passed=18, failed=9)
    assert serial.ret == parallel.ret == pytest.ExitCode.TESTS_FAILED
    parallel_summary = summary(project)

    def strip(s: dict[str, Any]) -> list[tuple[str, str, float | None]]:
        return [
            (c["label"], c["verdict"], round(c["gate"]["mean_diff"], 6) if c["gate"] else None)
            for c in s["suites"][0]["configs"]
        ]

    assert strip(parallel_summary) == strip(serial_summary)
    assert parallel_summary["environment"]["servers"][0]["url"] == fake.url
    parallel.stdout.fnmatch_lines(["zimage gate: FAILED — non-inferiority not shown for NVFP4"])
    lines = (project.path / "report" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 27
    assert len({json.loads(line)["run_id"] for line in lines}) == 1


def test_stop_on_first_failure_cancels_our_queued_prompts(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    fake = zimage_fake_comfyui_factory(image_latency=0.3)
    fake.faults.fail_runs(
        lambda run: run.graph["3"]["inputs"]["seed"] == 1, message="boom", times=1
    )
    result = run(project, fake, "-x", "--zimage-queue-depth=3")
    result.assert_outcomes(failed=1)
    fake.wait_idle(timeout=10)
    assert fake.generations <= 4
    paths = [(r.method, r.path) for r in fake.requests]
    assert ("POST", "/queue") in paths or ("POST", "/interrupt") in paths
    queue = httpx.get(f"{fake.url}/queue", timeout=10).json()
    assert queue["queue_pending"] == []  # nothing of ours is left queued on the server
    assert queue["queue_running"] == []
