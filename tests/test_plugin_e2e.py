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
from tests.helpers import REPO, more_prompts, write_small_suite
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


def decisions(project: pytest.Pytester) -> dict[str, str]:
    return {c["label"]: c["decision"] for c in summary(project)["suites"][0]["configs"]}


def six_prompts(project: pytest.Pytester, **kwargs: Any) -> None:
    """The small suite with six prompts: the fewest a gate verdict needs at alpha 0.05 is five
    (with three it is INSUFFICIENT DATA, which fails the run)."""
    write_small_suite(project.path, extra=more_prompts(3) + kwargs.pop("extra", ""), **kwargs)


def test_clean_run_passes_and_writes_artifacts(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    six_prompts(project)
    result = run(project, zimage_fake_comfyui)
    result.assert_outcomes(passed=54)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            f"zimage: host {zimage_fake_comfyui.url}: ComfyUI 0.18.1, cpu, VRAM * GiB (* free)",
            "collected 54 items",
            "zimage plan: suite small: 6 prompts × 3 seeds per candidate; planned power at δ = 0.01: 0.75, *",
            "zimage plan: per-case scaled band 0.0*over 36 candidate cases",
            "zimage plan: WARNING suite small: power 0.75 < 0.8 at margin 0.01; 7 prompts or 4 seeds would reach 80%",
            "*zimage quality gate*",
            "config*LPIPS vs BF16*CLIPScore*verdict*",
            "BF16 * 18 *ref*reference*",
            "zimage gate: PASSED",
        ]
    )
    assert decisions(project) == {
        "BF16": "reference",
        "FP8": "non-inferior",
        "NVFP4": "non-inferior",
    }
    lines = (project.path / "report" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 54
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
        "advisory": False,
        "stopped_early": "",
        "decisions": {"FP8": "non-inferior", "NVFP4": "non-inferior"},
        "failed_configs": [],
        "inconclusive_configs": [],
        "incomplete_configs": [],
        "flagged": [],
        "reason": "",
    }
    band = data["suites"][0]["plan"]["band"]
    assert band["mode"] == "scaled"
    assert band["n_cases"] == 36
    assert json.loads(lines[-1])["tolerance"] == band["width"]
    assert data["environment"]["servers"][0]["comfyui_version"] == "0.18.1"
    assert data["environment"]["scorers"]["clip"]["class"] == "EdgeCLIP"
    assert data["suites"][0]["parameters"]["tolerance"] == {"value": 0.04, "source": "default"}
    assert zimage_fake_comfyui.model_loads == 3
    assert zimage_fake_comfyui.generations == 54


def test_broken_config_fails_its_cases_with_numbers_and_paths(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    six_prompts(project)
    fake = zimage_fake_comfyui_factory(broken_models=[BROKEN], broken_style="noise")
    result = run(project, fake, "--zimage-band=fixed")
    result.assert_outcomes(passed=36, failed=18)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*cat-nvfp4-s1: CLIPScore * vs reference bf16 *: delta -0.* is below -band 0.0400 (fixed band 0.0400; LPIPS vs reference 0.*)",
            "*  image: *report/images/cat/nvfp4/s1-*.png",
            "*  reference: *report/images/cat/bf16/s1-*.png",
            "zimage gate: FAILED — non-inferiority not shown for NVFP4 (INFERIOR)",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "def runtest" not in result.stdout.str()
    assert decisions(project)["NVFP4"] == "inferior"


def test_a_failing_gate_fails_the_run_even_when_every_case_passes(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    six_prompts(project)
    fake = zimage_fake_comfyui_factory(broken_models=[BROKEN], broken_style="noise")
    result = run(project, fake, "--zimage-tolerance=1.0", "--zimage-band=fixed")
    result.assert_outcomes(passed=54)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["zimage gate: FAILED — non-inferiority not shown for NVFP4 (INFERIOR)"]
    )


def test_three_prompts_are_insufficient_data_and_fail_the_run(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    result = run(project, zimage_fake_comfyui)
    result.assert_outcomes(passed=27)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "zimage plan: WARNING suite small: 3 prompts cannot give a verdict at alpha = 0.05*",
            "zimage gate: FAILED — non-inferiority not shown for FP8 (INSUFFICIENT DATA), "
            "NVFP4 (INSUFFICIENT DATA)",
        ]
    )
    assert decisions(project)["FP8"] == "insufficient data"


def test_advisory_mode_exits_0_with_a_failing_gate_and_says_so_everywhere(
    project: pytest.Pytester, zimage_fake_comfyui_factory: Fake
) -> None:
    six_prompts(project)
    fake = zimage_fake_comfyui_factory(broken_models=[BROKEN], broken_style="noise")
    result = run(
        project,
        fake,
        "--zimage-advisory",
        "--zimage-tolerance=1.0",
        "--zimage-band=fixed",
        "--junitxml=junit.xml",
        f"--zimage-markdown={project.path / 'summary.md'}",
    )
    result.assert_outcomes(passed=54)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "zimage: ADVISORY — the gate is shown but does not set the exit status*",
            "ADVISORY — the gate is shown but does not set the exit status*",
            "zimage gate: ADVISORY — would have FAILED (non-inferiority not shown for NVFP4 "
            "(INFERIOR)); the gate does not set the exit status*",
        ]
    )
    data = summary(project)
    assert data["exit"]["advisory"] is True
    assert data["exit"]["gate_applied"] is False
    assert data["exit"]["gate_passed"] is False
    assert any("ADVISORY" in banner for banner in data["banners"])
    html = (project.path / "report" / "report.html").read_text(encoding="utf-8")
    assert "GATE ADVISORY — would have FAILED" in html
    assert "ADVISORY" in (project.path / "summary.md").read_text(encoding="utf-8")
    tree = ET.parse(project.path / "junit.xml")
    props = {p.get("name"): p.get("value") for p in tree.getroot().iter("property")}
    assert props["zimage_gate_mode"] == "ADVISORY"
    assert (props["zimage_gate"] or "").startswith("zimage gate: ADVISORY")
    assert props["zimage_decision_NVFP4"] == "INFERIOR"


def test_a_run_stopped_by_x_is_incomplete_and_never_passed_anywhere(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    six_prompts(project)
    # every FP8 case passes, then the first NVFP4 case fails and -x stops the run
    zimage_fake_comfyui.faults.fail_runs(
        model_file="z_image_turbo_nvfp4.safetensors", message="boom", times=1
    )
    result = run(
        project, zimage_fake_comfyui, "-x", f"--zimage-markdown={project.path / 'summary.md'}"
    )
    result.assert_outcomes(passed=36, errors=1)  # a failed generation is an ERROR (setup)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        ["zimage gate: INCOMPLETE — the run stopped early (stopping after 1 failures)*"]
    )
    assert "zimage gate: PASSED" not in out
    assert "NON-INFERIOR" not in "\n".join(line for line in out.splitlines() if "±" in line)
    data = summary(project)
    assert data["exit"]["gate_passed"] is False
    assert data["exit"]["stopped_early"] == "stopping after 1 failures"
    assert decisions(project) == {"BF16": "reference", "FP8": "incomplete", "NVFP4": "incomplete"}
    html = (project.path / "report" / "report.html").read_text(encoding="utf-8")
    assert "GATE INCOMPLETE" in html
    assert "PASSED" not in html
    markdown = (project.path / "summary.md").read_text(encoding="utf-8")
    assert "PASSED" not in markdown
    assert "INCOMPLETE" in markdown


def test_plan_only_prints_the_plan_and_generates_nothing(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    # the plan's warning is recorded, never raised: filterwarnings = error cannot crash a run
    result = run(project, zimage_fake_comfyui, "--zimage-plan", "-W", "error")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*(not contacted: --zimage-plan)*",
            "zimage plan: suite small: 3 prompts × 3 seeds per candidate; planned power at δ = 0.01: 0.00, minimum detectable drop — *",
            "zimage plan: WARNING suite small: 3 prompts cannot give a verdict*add prompts; power 0.00 < 0.8*",
            "zimage plan: --zimage-plan: 27 tests collected, none run, nothing generated",
        ]
    )
    assert zimage_fake_comfyui.generations == 0
    assert zimage_fake_comfyui.requests == []
    assert not (project.path / "report" / "summary.json").exists()


def test_plan_needs_no_server_and_reads_a_prior(project: pytest.Pytester) -> None:
    prior = project.path / "previous.json"
    prior.write_text(
        json.dumps(
            {
                "run_id": "old",
                "suites": [
                    {
                        "name": "small",
                        "configs": [
                            {
                                "gate": {
                                    "sd_diff": 0.02,
                                    "sd_within": 0.01,
                                    "seeds_per_prompt": [3, 3],
                                }
                            }
                        ],
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    write_small_suite(project.path, extra=more_prompts(9))
    result = project.runpytest_subprocess(
        "-p", "no:randomly", "--zimage-host=127.0.0.1:9", "--zimage-plan", f"--zimage-prior={prior}"
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "zimage plan: suite small: 12 prompts × 3 seeds per candidate; planned power at δ = 0.01: 0.*(prior *previous.json (run old): sd_between 0.019*, sd_within 0.01*",
            "zimage plan: WARNING suite small: no number of seeds is enough*; add prompts*",
        ]
    )


def test_a_staged_suite_stops_a_decided_config_and_saves_generations(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    # stage 1: 9 prompts (its look can decide at a nominal level of 0.024 > 2^-9); stage 2: 3
    six_prompts(project, extra=more_prompts(3, start=3) + more_prompts(3, start=6, stage=2))
    result = run(
        project, zimage_fake_comfyui, "--zimage-configs=bf16,fp8", "--zimage-seeds=1", "-rs"
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=18, skipped=6)
    result.stdout.fnmatch_lines(
        [
            "zimage plan: suite small: 12 prompts × 1 seeds per candidate in 2 stages (looks at 9, 12 prompts)*",
            "FP8 * NON-INFERIOR @ stage 1/2*",
            "note: sequential stages saved 6 generations*",
            "zimage gate: PASSED",
            "SKIPPED [[]3[]] *: every candidate config of small was decided by stage 1 of 2*",
            "SKIPPED [[]3[]] *: FP8 decided NON-INFERIOR at stage 1 of 2: its stage-2 cases are not generated*",
        ]
    )
    assert zimage_fake_comfyui.generations == 18
    fp8 = next(c for c in summary(project)["suites"][0]["configs"] if c["key"] == "fp8")
    assert fp8["decision"] == "non-inferior"
    assert fp8["stages"]["decided_stage"] == 1
    assert fp8["stages"]["generations_saved"] == 3
    assert summary(project)["suites"][0]["generations_saved"] == 6


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


def test_execution_error_is_an_error_of_its_case_only(
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
    # a case whose image could not be generated is an error (E), not a quality failure (F)
    result.assert_outcomes(passed=26, errors=1)
    result.stdout.fnmatch_lines(["*cat-fp8-s2*", "*RuntimeError*illegal memory access*"])
    assert "Traceback" not in result.stdout.str()


def test_a_truncated_download_is_fetched_again(
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
    result.assert_outcomes(passed=1)
    assert zimage_fake_comfyui.generations == 1  # the image was downloaded again, not regenerated


def test_a_png_corrupt_on_every_download_is_a_clear_error(
    project: pytest.Pytester, zimage_fake_comfyui: FakeComfyUI
) -> None:
    zimage_fake_comfyui.faults.corrupt_view("truncate", times=None)
    result = run(
        project,
        zimage_fake_comfyui,
        "--zimage-configs=bf16",
        "--zimage-prompts=cat",
        "--zimage-seeds=1",
    )
    result.assert_outcomes(errors=1)
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
    assert nv["decision"] == "insufficient data"


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
    result.assert_outcomes(passed=27, warnings=2)  # and the power plan's warning
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
            (c["label"], c["decision"], round(c["gate"]["mean_diff"], 6) if c["gate"] else None)
            for c in s["suites"][0]["configs"]
        ]

    assert strip(parallel_summary) == strip(serial_summary)
    assert parallel_summary["environment"]["servers"][0]["url"] == fake.url
    parallel.stdout.fnmatch_lines(
        ["zimage gate: FAILED — non-inferiority not shown for FP8 (INSUFFICIENT DATA), NVFP4*"]
    )
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
    result.assert_outcomes(errors=1)  # a generation that failed is an error of its case's setup
    result.stdout.fnmatch_lines(["zimage verdict: ERROR*the run stopped early*"])
    assert result.ret != pytest.ExitCode.OK
    fake.wait_idle(timeout=10)
    assert fake.generations <= 4
    paths = [(r.method, r.path) for r in fake.requests]
    assert ("POST", "/queue") in paths or ("POST", "/interrupt") in paths
    queue = httpx.get(f"{fake.url}/queue", timeout=10).json()
    assert queue["queue_pending"] == []  # nothing of ours is left queued on the server
    assert queue["queue_running"] == []
