"""Metrics in the summary and the reports: per config, per prompt, in the terminal and HTML."""

from __future__ import annotations

import math

import jsonschema
import pytest

from pytest_zimage_quality.metrics import REFERENCE_BASED, REFERENCE_FREE, MetricInfo
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.report.metric_views import (
    metric_rows,
    prompt_metric_rows,
    record_metric_facts,
    shown_metrics,
)
from pytest_zimage_quality.settings import HostSpec, Settings
from pytest_zimage_quality.summary import RunSummary, build_summary

from .test_summary import ENVIRONMENT, SCHEMA, records

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
    assert quant["psnr"]["n_infinite"] == 4  # seed 1 of each prompt: identical images
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
    assert rows[1] == ["QUANT", "0.700 (-0.300)", "22.50 (+4 ∞)"]
    headers, rows = prompt_metric_rows(suite, TEXT)
    assert rows == [["a", "1.000", "0.700"]]  # prompts without text have no row


def test_a_grid_caption_lists_the_further_metrics() -> None:
    record = _with_metrics()[1]  # a candidate of prompt a, seed 1
    facts = record_metric_facts(record, {m.name: m for m in (TEXT, PSNR)})
    assert facts == [("Text acc.", "0.600"), ("PSNR dB", "∞")]
