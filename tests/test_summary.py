"""The run summary, built from records alone: no session, no network, no pytest run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.settings import HostSpec, Settings
from pytest_zimage_quality.suite import load_suite
from pytest_zimage_quality.summary import (
    ADVISORY_BANNER,
    RANDOM_BANNER,
    SIMULATED_BANNER,
    ServerSummary,
    build_summary,
)
from tests.helpers.summary_records import ENVIRONMENT, SCHEMA, paired_record, records


def summarise(
    rows: list[CaseRecord], stopped_early: str = "", **settings: object
) -> dict[str, object]:
    summary = build_summary(
        rows,
        suites=(),
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),), **settings),  # type: ignore[arg-type]
        environment=ENVIRONMENT,
        run_id="run-1",
        created="2025-01-01T00:00:00Z",
        stopped_early=stopped_early,
    )
    data = summary.to_dict()
    jsonschema.validate(data, SCHEMA)
    return data


def test_a_summary_from_records_alone_is_typed_and_valid() -> None:
    summary = build_summary(
        records(),
        suites=(),
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),)),
        environment=ENVIRONMENT,
        run_id="run-1",
    )
    (suite,) = summary.suites
    assert suite.reference.key == "base"
    assert [c.key for c in suite.configs] == ["base", "quant"]
    reference, candidate = suite.configs
    assert reference.verdict == reference.decision == "reference"
    assert reference.gate is None
    assert candidate.gate is not None
    assert candidate.gate.n_prompts == 6
    assert candidate.n_scored == 18
    assert candidate.decision == "non-inferior"
    assert candidate.verdict == "pass"
    assert summary.exit.gate_passed
    assert [p.key for p in suite.prompts] == ["a", "b", "c", "d", "e", "f"]
    assert suite.prompts[0].cells["quant"].delta is not None
    assert suite.prompts[0].cells["base"].delta is None
    jsonschema.validate(summary.to_dict(), SCHEMA)


def test_speed_is_the_ratio_of_median_seconds() -> None:
    configs = summarise(records())["suites"][0]["configs"]  # type: ignore[index]
    ref, cand = configs
    assert ref["speed"] == {"median_seconds": 4.02, "n": 18, "source": "server", "speedup": 1.0}
    assert cand["speed"]["median_seconds"] == 2.02
    assert abs(cand["speed"]["speedup"] - 4.02 / 2.02) < 1e-12


def test_a_large_drop_fails_the_gate_and_says_why() -> None:
    data = summarise(records(drop=0.05))
    exit_ = data["exit"]
    assert exit_["gate_ran"]  # type: ignore[index]
    assert exit_["gate_applied"]  # type: ignore[index]
    assert exit_["gate_passed"] is False  # type: ignore[index]
    assert exit_["failed_configs"] == ["QUANT"]  # type: ignore[index]
    assert exit_["decisions"] == {"QUANT": "inferior"}  # type: ignore[index]
    assert "non-inferiority not shown for QUANT (INFERIOR)" in exit_["reason"]  # type: ignore[index]


def test_too_few_prompts_are_insufficient_data_and_fail_the_run() -> None:
    rows = [r for r in records() if r.prompt in ("a", "b", "c")]
    data = summarise(rows)
    (_, candidate) = data["suites"][0]["configs"]  # type: ignore[index]
    assert candidate["decision"] == "insufficient data"
    assert data["exit"]["gate_passed"] is False  # type: ignore[index]
    assert data["exit"]["inconclusive_configs"] == ["QUANT"]  # type: ignore[index]


def test_a_run_stopped_early_is_incomplete_for_every_config_and_never_passes() -> None:
    data = summarise(records(), stopped_early="stopping after 1 failures")
    exit_ = data["exit"]
    (_, candidate) = data["suites"][0]["configs"]  # type: ignore[index]
    assert candidate["decision"] == "incomplete"
    assert candidate["gate"]["decision"] == "non-inferior"  # the data alone would pass
    assert exit_["gate_passed"] is False  # type: ignore[index]
    assert exit_["incomplete_configs"] == ["QUANT"]  # type: ignore[index]
    assert exit_["stopped_early"] == "stopping after 1 failures"  # type: ignore[index]
    assert "stopped early" in exit_["reason"]  # type: ignore[index]
    assert any("INCOMPLETE" in note for note in candidate["notes"])


def test_a_config_without_usable_pairs_is_incomplete() -> None:
    rows = [
        r.with_(clipscore=None, reference_clipscore=None, delta=None, outcome="error")
        if r.config == "quant"
        else r
        for r in records()
    ]
    data = summarise(rows)
    (_, candidate) = data["suites"][0]["configs"]  # type: ignore[index]
    assert candidate["decision"] == "incomplete"
    assert candidate["gate"] is None
    assert data["exit"]["gate_passed"] is False  # type: ignore[index]
    assert data["exit"]["incomplete_configs"] == ["QUANT"]  # type: ignore[index]


def test_nan_scores_are_left_out_and_the_lost_prompt_is_named() -> None:
    nan = float("nan")
    rows = [
        r.with_(clipscore=nan, delta=nan) if r.config == "quant" and r.prompt == "b" else r
        for r in records()
    ]
    rows[0] = rows[0].with_(lpips=float("inf"))
    data = summarise(rows)  # valid JSON: no NaN reaches summary.json
    json.dumps(data, allow_nan=False)
    (_, candidate) = data["suites"][0]["configs"]  # type: ignore[index]
    assert candidate["gate"]["n_prompts"] == 5
    assert candidate["missing_prompts"] == ["b"]
    assert candidate["planned_prompts"] == 6
    assert any("the gate used 5 of 6 prompts" in note for note in candidate["notes"])


def test_advisory_mode_shows_the_gate_says_advisory_and_does_not_apply_it() -> None:
    data = summarise(records(drop=0.05), advisory=True)
    assert ADVISORY_BANNER in data["banners"]  # type: ignore[operator]
    assert data["exit"]["advisory"] is True  # type: ignore[index]
    assert data["exit"]["gate_applied"] is False  # type: ignore[index]
    assert data["exit"]["gate_passed"] is False  # type: ignore[index]
    assert data["exit"]["failed_configs"] == ["QUANT"]  # type: ignore[index]


def test_a_staged_suite_reports_the_deciding_stage_and_the_generations_saved(
    tmp_path: Path,
) -> None:
    from tests.helpers import more_prompts, write_small_suite

    # 3 + 6 prompts in stage 1, 3 in stage 2 (three seeds): a clearly fine config stops early
    # (a look at n prompts can stop only where 2^-n is below its nominal level: 0.024 here)
    path = write_small_suite(tmp_path, extra=more_prompts(6) + more_prompts(3, start=6, stage=2))
    suite = load_suite(path)
    assert suite.stages == (1, 2)
    rows = []
    for i, prompt in enumerate(p.key for p in suite.prompts if p.stage == 1):
        for seed in suite.seeds:
            ref = 0.30 + i / 100 + seed / 1000
            for config in ("bf16", "fp8"):
                score = ref + (0 if config == "bf16" else 0.0004 * (seed - 2))
                rows.append(
                    paired_record(
                        suite=suite.name,
                        prompt=prompt,
                        config=config,
                        seed=seed,
                        score=score,
                        ref=ref,
                    )
                )
    summary = build_summary(
        rows,
        suites=(suite,),
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),), configs=("bf16", "fp8")),
        environment=ENVIRONMENT,
        run_id="run-1",
    )
    data = summary.to_dict()
    jsonschema.validate(data, SCHEMA)
    (suite_data,) = data["suites"]
    fp8 = next(c for c in suite_data["configs"] if c["key"] == "fp8")
    assert fp8["decision"] == "non-inferior"
    assert fp8["stages"]["decided_stage"] == 1
    assert fp8["stages"]["n_stages"] == 2
    assert fp8["stages"]["generations_saved"] == 9  # 3 prompts x 3 seeds
    assert suite_data["generations_saved"] == 18  # and the reference's 9
    assert [len(s) for s in suite_data["plan"]["stages"]] == [9, 3]
    assert any("decided at stage 1 of 2" in note for note in fp8["notes"])


def test_random_weights_show_the_gate_but_do_not_apply_it() -> None:
    data = summarise(records(drop=0.05), weights="random")
    assert data["banners"] == [RANDOM_BANNER]
    assert data["exit"]["advisory"] is False  # type: ignore[index]
    assert data["exit"]["gate_applied"] is False  # type: ignore[index]


def test_simulated_records_carry_the_banner_and_no_candidate_means_no_verdict() -> None:
    rows = [r.with_(simulated=True) for r in records() if r.config == "base"]
    data = summarise(rows)
    assert data["banners"] == [SIMULATED_BANNER]
    assert data["exit"]["gate_ran"] is False  # type: ignore[index]


def test_header_values_never_reach_the_summary() -> None:
    data = summarise(records(), headers=(("Authorization", "Bearer secret"),))
    assert data["options"]["header_names"] == ["Authorization"]  # type: ignore[index]
    assert "secret" not in json.dumps(data)


def test_environment_is_serialised_as_given() -> None:
    env = summarise(records())["environment"]
    assert env["servers"][0]["url"] == "http://gpu:8188"  # type: ignore[index]
    assert env["servers"][0]["gpu_name"] == "GB10"  # type: ignore[index]
    assert ServerSummary.from_dict(env["servers"][0]).to_dict() == env["servers"][0]  # type: ignore[index]
