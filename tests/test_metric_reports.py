"""Metrics in the summary and the reports: per config, per prompt, in the terminal and HTML."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import pytest

from pytest_zimage_quality.errors import SuiteError
from pytest_zimage_quality.metrics import REFERENCE_BASED, REFERENCE_FREE, MetricInfo
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.report.markdown import render_markdown
from pytest_zimage_quality.report.metric_views import (
    config_metric_cell,
    metric_rows,
    prompt_metric_rows,
    record_metric_facts,
    shown_metrics,
)
from pytest_zimage_quality.settings import HostSpec, Settings
from pytest_zimage_quality.suite import load_suite
from pytest_zimage_quality.summary import RunSummary, build_summary
from pytest_zimage_quality.summary.build import gate_metric_problem
from tests.helpers import write_small_suite
from tests.helpers.summary_records import ENVIRONMENT, PROMPTS, SCHEMA, records

TEXT = MetricInfo("text_accuracy", "Text acc.", REFERENCE_FREE, True)
PSNR = MetricInfo("psnr", "PSNR dB", REFERENCE_BASED, True)


def _with_metrics() -> list[CaseRecord]:
    out = []
    for record in records():
        metrics = {"clipscore": record.clipscore or 0.0}
        ref_metrics = {}
        if record.prompt == "a":  # the one prompt that declares text
            metrics["text_accuracy"] = 1.0 if record.is_reference else 0.5 + record.seed / 10
            if not record.is_reference:
                ref_metrics["text_accuracy"] = 1.0
        if not record.is_reference:
            metrics["psnr"] = math.inf if record.seed == 1 else 20.0 + record.seed
        out.append(record.with_(metrics=metrics, reference_metrics=ref_metrics))
    return out


def _summary() -> RunSummary:
    return build_summary(
        _with_metrics(),
        suites=(),
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),)),
        environment=ENVIRONMENT,
        run_id="run-1",
        created="2025-01-01T00:00:00Z",
        metrics=[TEXT, PSNR],
    )


def test_the_summary_has_each_metric_per_config_and_cell_and_valid_json() -> None:
    summary = _summary()
    data = summary.to_dict()
    jsonschema.validate(data, SCHEMA)
    # the scorers described text_accuracy and psnr; clipscore was only in the records
    assert [m["name"] for m in data["metrics"]] == ["text_accuracy", "psnr", "clipscore"]
    quant = data["suites"][0]["configs"][1]["metrics"]
    assert quant["text_accuracy"]["mean"] == pytest.approx(0.7)  # seeds 1..3: 0.6, 0.7, 0.8
    assert quant["text_accuracy"]["reference_mean"] == 1.0
    assert abs(quant["text_accuracy"]["delta"] - (-0.3)) < 1e-12
    assert quant["psnr"]["n_infinite"] == len(PROMPTS)  # seed 1 of each prompt: identical
    assert quant["psnr"]["mean"] == 22.5  # of the finite ones (21, 22 per prompt)
    base = data["suites"][0]["configs"][0]["metrics"]
    assert "psnr" not in base  # reference-based: nothing for the reference itself
    cell = data["suites"][0]["prompts"][0]["cells"]["quant"]
    assert cell["metrics"]["text_accuracy"] == pytest.approx(0.7)
    assert "text_accuracy" not in data["suites"][0]["prompts"][1]["cells"]["quant"]["metrics"]


def test_terminal_columns_and_per_prompt_rows() -> None:
    summary = _summary()
    suite = summary.suites[0]
    shown = shown_metrics(summary.metrics, verbose=False)
    assert [m.name for m in shown] == ["text_accuracy", "clipscore"]  # psnr needs -v
    assert [m.name for m in shown_metrics(summary.metrics, verbose=True)][1] == "psnr"
    headers, rows = metric_rows(suite, [TEXT, PSNR])
    assert headers == ["config", "Text acc. ↑", "PSNR dB ↑"]
    assert rows[0] == ["BASE", "1.000", "—"]
    assert rows[1] == ["QUANT", "0.700 (-0.300)", f"22.50 (+{len(PROMPTS)} ∞)"]
    headers, rows = prompt_metric_rows(suite, TEXT)
    assert rows == [["a", "1.000", "0.700"]]  # prompts without text have no row


def test_a_grid_caption_lists_the_further_metrics() -> None:
    record = _with_metrics()[1]  # a candidate of prompt a, seed 1
    facts = record_metric_facts(record, {m.name: m for m in (TEXT, PSNR)})
    assert facts == [("Text acc.", "0.600"), ("PSNR dB", "∞")]


# -- the gate on the metric the suite names ------------------------------------------------

SHARP = MetricInfo("blur", "Blur", REFERENCE_FREE, False)  # lower is better


def _gate_records(suite_name: str, prompts: list[str]) -> list[CaseRecord]:
    out = []
    for i, prompt in enumerate(prompts):
        for seed in (1, 2, 3):
            for config in ("bf16", "fp8"):
                is_ref = config == "bf16"
                blur = 0.10 + 0.01 * i + 0.001 * seed
                text = 1.0
                if not is_ref:
                    blur += 0.05  # worse
                    text = 0.5  # worse
                metrics = {"clipscore": 0.3, "blur": blur, "text_accuracy": text}
                ref_metrics = (
                    {} if is_ref else {"clipscore": 0.3, "blur": blur - 0.05, "text_accuracy": 1.0}
                )
                out.append(
                    CaseRecord(
                        suite=suite_name, case_id=f"{prompt}-{config}-s{seed}", prompt=prompt,
                        prompt_text=prompt, config=config, config_label=config.upper(), seed=seed,
                        reference="bf16", role="reference" if is_ref else "candidate",
                        clipscore=0.3, reference_clipscore=None if is_ref else 0.3,
                        delta=None if is_ref else 0.0, metrics=metrics,
                        reference_metrics=ref_metrics, outcome="passed",
                    )
                )  # fmt: skip
    return out


def _gated(tmp_path: Path, gate_metric: str) -> RunSummary:
    tmp_path.mkdir(exist_ok=True)
    suite = load_suite(write_small_suite(tmp_path, suite_extra=f'gate_metric = "{gate_metric}"'))
    rows = _gate_records(suite.name, ["cat", "ink", "sign"])
    return build_summary(
        rows,
        suites=[suite],
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),)),
        environment=ENVIRONMENT,
        run_id="run-1",
        metrics=[SHARP, TEXT],
    )


def test_the_gate_runs_on_the_suites_metric_with_its_direction(tmp_path: Path) -> None:
    summary = _gated(tmp_path, "text_accuracy")
    suite = summary.suites[0]
    assert suite.gate_metric == "text_accuracy"
    gate = suite.configs[1].gate
    assert gate is not None
    assert gate.mean_diff == pytest.approx(-0.5)  # candidate − reference text accuracy
    jsonschema.validate(summary.to_dict(), SCHEMA)
    # a lower-is-better metric is negated: more blur is a drop
    blur = _gated(tmp_path / "b", "blur").suites[0].configs[1].gate
    assert blur is not None
    assert blur.mean_diff == pytest.approx(-0.05)
    clip = _gated(tmp_path / "c", "clipscore").suites[0].configs[1].gate
    assert clip is not None
    assert clip.mean_diff == pytest.approx(0.0)


def test_a_gate_metric_the_run_did_not_measure_fails_the_run_with_its_name(tmp_path: Path) -> None:
    summary = _gated(tmp_path, "pickscore")
    assert summary.suites[0].configs[1].gate is None
    assert not summary.exit.gate_passed
    assert "gate metric 'pickscore' was not measured in this run" in summary.exit.reason


def test_a_bad_gate_metric_name_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"suite\.gate_metric"):
        load_suite(write_small_suite(tmp_path, suite_extra='gate_metric = "Text Accuracy"'))


def _option_gated(tmp_path: Path, suite_metric: str, option: str | None) -> RunSummary:
    tmp_path.mkdir(exist_ok=True)
    suite = load_suite(write_small_suite(tmp_path, suite_extra=f'gate_metric = "{suite_metric}"'))
    return build_summary(
        _gate_records(suite.name, ["cat", "ink", "sign"]),
        suites=[suite],
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),), gate_metric=option),
        environment=ENVIRONMENT,
        run_id="run-1",
        metrics=[SHARP, TEXT],
    )


def test_the_gate_metric_option_beats_the_suite_file(tmp_path: Path) -> None:
    by_option = _option_gated(tmp_path / "a", "clipscore", "text_accuracy").suites[0]
    assert by_option.gate_metric == "text_accuracy"
    assert by_option.configs[1].gate is not None
    assert by_option.configs[1].gate.mean_diff == pytest.approx(-0.5)
    by_suite = _option_gated(tmp_path / "b", "text_accuracy", None).suites[0]
    assert by_suite.gate_metric == "text_accuracy"
    assert _option_gated(tmp_path / "c", "clipscore", None).suites[0].gate_metric == "clipscore"


def test_an_unknown_gate_metric_option_names_the_metrics_it_could_use() -> None:
    settings = Settings(gate_metric="pickscore")
    problem = gate_metric_problem(settings, [SHARP, TEXT, PSNR])
    assert problem is not None
    assert "--zimage-gate-metric 'pickscore' is not a metric of this run" in problem
    assert problem.endswith("the metrics it can name here: blur, text_accuracy")  # not psnr
    psnr = gate_metric_problem(Settings(gate_metric="psnr"), [SHARP, TEXT, PSNR])
    assert psnr is not None
    assert "compares with the reference image" in psnr
    assert gate_metric_problem(Settings(gate_metric="text_accuracy"), [TEXT]) is None
    assert gate_metric_problem(Settings(), [TEXT]) is None


@pytest.mark.slow
def test_a_gate_metric_option_the_run_lacks_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_small_suite(pytester.path)
    result = pytester.runpytest_subprocess(  # its own process: no scorer state shared
        "-p",
        "no:randomly",
        "--zimage-host=simulated",
        "--zimage-weights=random",
        "--zimage-gate-metric=pickscore",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["zimage usage error: --zimage-gate-metric 'pickscore' is not a metric of this run; "
         "the metrics it can name here: clipscore*"]
    )  # fmt: skip


def test_markdown_has_a_column_per_metric_and_per_prompt_text_accuracy() -> None:
    summary = _summary()
    text = render_markdown(summary)
    header = next(line for line in text.splitlines() if line.startswith("| config | n |"))
    cells = [c.strip() for c in header.strip("|").split("|")]
    # the further metrics sit between the gate's columns and the verdict
    assert cells[-4:] == ["Text acc. ↑", "PSNR dB ↑", "verdict", cells[-1]]
    suite = summary.suites[0]
    for config in suite.configs:
        row = next(line for line in text.splitlines() if line.startswith(f"| {config.label} |"))
        assert len(row.strip("|").split(" | ")) == len(cells)
        assert config_metric_cell(TEXT, config) in row
    assert "**Per prompt: Text acc.**" in text
    per_prompt = text.split("**Per prompt: Text acc.**")[1].split("\n\n")[1].splitlines()
    assert [line.split(" | ")[0] for line in per_prompt[2:]] == ["| a"]  # only the text prompt
    assert "Per prompt: PSNR" not in text  # reference-based: the verdict table only
