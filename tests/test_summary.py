"""The run summary, built from records alone: no session, no network, no pytest run."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.settings import HostSpec, Settings
from pytest_zimage_quality.summary import (
    RANDOM_BANNER,
    SIMULATED_BANNER,
    Environment,
    ServerSummary,
    build_summary,
)

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "docs" / "summary.schema.json").read_text(encoding="utf-8")
)
ENVIRONMENT = Environment(
    plugin_version="0.1.0",
    python="3.12.1",
    platform="Linux",
    pytest="8.3.0",
    torch=None,
    device="cpu",
    servers=(ServerSummary(url="http://gpu:8188", comfyui_version="0.3.64", gpu_name="GB10"),),
)
#: per prompt: (reference, candidate) CLIPScore means; seeds add these offsets to both
PROMPTS = {"a": (0.30, 0.301), "b": (0.32, 0.318), "c": (0.28, 0.281), "d": (0.35, 0.352)}
SEEDS = {1: -0.002, 2: 0.0, 3: 0.002}


def records(drop: float = 0.0) -> list[CaseRecord]:
    out = []
    for prompt, (ref, cand) in PROMPTS.items():
        for seed, offset in SEEDS.items():
            ref_score = ref + offset
            for config, score, seconds in (
                ("base", ref_score, 4.0),
                ("quant", cand + offset - drop, 2.0),
            ):
                is_ref = config == "base"
                out.append(
                    CaseRecord(
                        suite="s",
                        case_id=f"{prompt}-{config}-s{seed}",
                        prompt=prompt,
                        prompt_text=f"text {prompt}",
                        config=config,
                        config_label=config.upper(),
                        seed=seed,
                        reference="base",
                        role="reference" if is_ref else "candidate",
                        clipscore=score,
                        reference_clipscore=None if is_ref else ref_score,
                        delta=None if is_ref else score - ref_score,
                        lpips=None if is_ref else 0.25,
                        server_seconds=seconds + seed * 0.01,
                        outcome="passed",
                    )
                )
    return out


def summarise(rows: list[CaseRecord], **settings: object) -> dict[str, object]:
    summary = build_summary(
        rows,
        suites=(),
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),), **settings),  # type: ignore[arg-type]
        environment=ENVIRONMENT,
        run_id="run-1",
        created="2025-01-01T00:00:00Z",
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
    assert reference.verdict == "reference"
    assert reference.gate is None
    assert candidate.gate is not None
    assert candidate.gate.n_prompts == 4
    assert candidate.n_scored == 12
    assert [p.key for p in suite.prompts] == ["a", "b", "c", "d"]
    assert suite.prompts[0].cells["quant"].delta is not None
    assert suite.prompts[0].cells["base"].delta is None
    jsonschema.validate(summary.to_dict(), SCHEMA)


def test_speed_is_the_ratio_of_median_seconds() -> None:
    configs = summarise(records())["suites"][0]["configs"]  # type: ignore[index]
    ref, cand = configs
    assert ref["speed"] == {"median_seconds": 4.02, "n": 12, "source": "server", "speedup": 1.0}
    assert cand["speed"]["median_seconds"] == 2.02
    assert abs(cand["speed"]["speedup"] - 4.02 / 2.02) < 1e-12


def test_a_large_drop_fails_the_gate_and_says_why() -> None:
    data = summarise(records(drop=0.05))
    exit_ = data["exit"]
    assert exit_["gate_ran"]  # type: ignore[index]
    assert exit_["gate_applied"]  # type: ignore[index]
    assert exit_["gate_passed"] is False  # type: ignore[index]
    assert exit_["failed_configs"] == ["QUANT"]  # type: ignore[index]
    assert "non-inferiority not shown for QUANT" in exit_["reason"]  # type: ignore[index]


def test_random_weights_show_the_gate_but_do_not_apply_it() -> None:
    data = summarise(records(drop=0.05), weights="random")
    assert data["banners"] == [RANDOM_BANNER]
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
