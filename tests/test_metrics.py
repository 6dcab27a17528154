"""The scorer plug-in interface: specs, result checking, records, and registered metrics in the
scoring worker (device and background lanes)."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from pytest_zimage_quality.errors import ScorerError
from pytest_zimage_quality.images import encode_png
from pytest_zimage_quality.metrics import (
    REFERENCE_BASED,
    REFERENCE_FREE,
    MetricInfo,
    PromptInfo,
    ScoreBatch,
    ScorerSpec,
    ScorerSpecError,
    check_specs,
    read_result,
)
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.scorers import flatten_specs
from pytest_zimage_quality.scoring_worker import ScoringWorker
from pytest_zimage_quality.suite import Suite, load_suite
from tests.helpers import write_small_suite
from tests.helpers.doubles import double_specs
from tests.helpers.scoring import Recorder, make_case, make_image, submit


def _mean(batch: ScoreBatch) -> list[float]:
    return [float(torch.as_tensor(image).float().mean()) for image in batch.images]


def _spec(name: str = "brightness", **kwargs: Any) -> ScorerSpec:
    kwargs.setdefault("kind", REFERENCE_FREE)
    kwargs.setdefault("higher_is_better", True)
    kwargs.setdefault("score", _mean)
    return ScorerSpec(name=name, **kwargs)


# -- the spec ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Brightness", "1st", "with-dash", "", "x" * 41, "ümlaut"])
def test_a_metric_name_must_be_a_lower_case_identifier(name: str) -> None:
    with pytest.raises(ScorerSpecError, match="lower-case identifier"):
        _spec(name)


def test_kind_direction_and_score_are_checked() -> None:
    with pytest.raises(ScorerSpecError, match="kind 'paired' is not one of"):
        _spec(kind="paired")
    with pytest.raises(ScorerSpecError, match="higher_is_better must be True or False"):
        _spec(higher_is_better=1)
    with pytest.raises(ScorerSpecError, match="score must be callable"):
        _spec(score="mean")


def test_label_defaults_to_name_and_describe_is_plain_data() -> None:
    spec = _spec(kind=REFERENCE_BASED, higher_is_better=False, info=lambda: {"model": "m"})
    assert spec.label == "brightness"
    info = spec.describe()
    assert info.reference_based
    data = json.loads(json.dumps(info.to_dict()))
    assert MetricInfo.from_dict(data) == info
    assert data["facts"] == {"model": "m"}


def test_duplicate_names_and_non_specs_are_refused_with_their_origin() -> None:
    a, b = _spec(), _spec()
    with pytest.raises(ScorerSpecError, match=r"two scorers are named 'brightness' \(x and y\)"):
        check_specs([a, b], origin={id(a): "x", id(b): "y"})
    with pytest.raises(ScorerSpecError, match="returned dict, not a ScorerSpec"):
        check_specs([{"name": "x"}])
    with pytest.raises(ScorerError, match="gave str, not a ScorerSpec"):
        flatten_specs("brightness", "a hook")
    assert flatten_specs(None, "a hook") == []
    assert flatten_specs(a, "a hook") == [a]


def test_applies_selects_prompts() -> None:
    spec = _spec(applies=lambda p: p.expected_text is not None)
    assert spec.wants(PromptInfo("sign", "a sign", expected_text="OPEN"))
    assert not spec.wants(PromptInfo("cat", "a cat"))


# -- results -------------------------------------------------------------------------------


def test_results_are_values_or_values_with_details() -> None:
    spec = _spec()
    assert read_result(spec, [0.5, 1], 2) == ([0.5, 1.0], ["", ""])
    assert read_result(spec, ([0.5, 0.25], ["A", "B"]), 2) == ([0.5, 0.25], ["A", "B"])
    assert read_result(spec, (0.5, 0.25), 2) == ([0.5, 0.25], ["", ""])  # two plain values
    assert read_result(spec, torch.tensor([0.5, 0.25]), 2) == ([0.5, 0.25], ["", ""])
    assert read_result(spec, [float("inf")], 1)[0] == [math.inf]  # PSNR of identical images


@pytest.mark.parametrize(
    ("result", "message"),
    [
        ([0.5], "returned 1 values and 2 details for 2 images"),
        ([0.5, float("nan")], "returned NaN"),
        ([0.5, "high"], "returned 'high' \\(str\\), not a number"),
        ([0.5, True], "not a number"),
        (0.5, "returned float; expected a list"),
        (([0.5, 0.5], ["only one"]), "2 values and 1 details"),
    ],
)
def test_a_broken_result_names_the_scorer(result: object, message: str) -> None:
    with pytest.raises(ScorerSpecError, match=message) as info:
        read_result(_spec(), result, 2)
    assert "'brightness'" in str(info.value)


# -- records -------------------------------------------------------------------------------


def _record(**changes: Any) -> CaseRecord:
    base = CaseRecord(
        suite="s",
        case_id="sign-fp8-s1",
        prompt="sign",
        prompt_text="a sign",
        config="fp8",
        config_label="FP8",
        seed=1,
        reference="bf16",
        role="candidate",
    )
    return base.with_(**changes)


def test_metrics_travel_as_plain_properties_and_come_back() -> None:
    record = _record(
        clipscore=0.3,
        metrics={"clipscore": 0.3, "text_accuracy": 0.75, "psnr": math.inf},
        reference_metrics={"clipscore": 0.31, "text_accuracy": 1.0},
        details={"text_accuracy": "CLOSED FOR\nREPAIRS"},
    )
    props = dict(record.to_properties())
    assert props["zimage_metric_text_accuracy"] == 0.75
    assert props["zimage_reference_metric_text_accuracy"] == 1.0
    assert props["zimage_detail_text_accuracy"] == "CLOSED FOR\nREPAIRS"
    assert all(isinstance(v, str | int | float | bool) for v in props.values())
    back = CaseRecord.from_properties(record.to_properties())
    assert back == record


def test_json_form_is_strict_json_with_infinity_as_a_string() -> None:
    record = _record(metrics={"psnr": math.inf, "ssim": 1.0})
    text = json.dumps(record.to_dict(), allow_nan=False)
    data = json.loads(text)
    assert data["metrics"] == {"psnr": "inf", "ssim": 1.0}
    assert CaseRecord.from_dict(data).metrics == {"psnr": math.inf, "ssim": 1.0}


def test_old_records_without_metrics_still_load() -> None:
    data = _record(clipscore=0.3).to_dict()
    for name in ("metrics", "reference_metrics", "details"):
        del data[name]
    record = CaseRecord.from_dict(data)
    assert record.metrics == {}
    assert record.details == {}
    assert record.metric("clipscore") is None


# -- registered metrics in the worker -------------------------------------------------------


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    directory = tmp_path_factory.mktemp("suite")
    return load_suite(write_small_suite(directory, suite_extra="text_from_quotes = true"))


def _worker(recorder: Recorder) -> ScoringWorker:
    from pytest_zimage_quality.images import decode_png, is_blank

    worker = ScoringWorker(
        decode=lambda data, name: decode_png(data, label=name),
        is_blank=is_blank,
        on_scored=recorder.on_scored,
        on_failed=recorder.on_failed,
        batch_size=4,
        decode_threads=1,
    )
    worker.start()
    return worker


def test_registered_metrics_of_both_kinds_run_beside_the_built_ins(
    suite: Suite, tmp_path: Path
) -> None:
    threads: dict[str, str] = {}

    def darkness(batch: ScoreBatch) -> tuple[list[float], list[str]]:
        threads["darkness"] = threading.current_thread().name
        assert all(image.device.type == "cpu" for image in batch.images)
        values = [255 - v for v in _mean(batch)]
        return values, [f"{p.key}:{p.expected_text}" for p in batch.prompts]

    def mean_gap(batch: ScoreBatch) -> list[float]:
        threads["gap"] = threading.current_thread().name
        assert len(batch.references) == len(batch.images) == len(batch.reference_keys)
        return [
            float((a.float() - b.float()).abs().mean())
            for a, b in zip(batch.images, batch.references, strict=True)
        ]

    specs = [
        *double_specs(),
        _spec(
            "darkness",
            higher_is_better=False,
            score=darkness,
            background=True,
            applies=lambda p: p.expected_text is not None,
        ),
        _spec("gap", kind=REFERENCE_BASED, higher_is_better=False, score=mean_gap),
    ]
    recorder = Recorder()
    worker = _worker(recorder)
    try:
        worker.provide(specs)
        ref, cand = make_case(suite, "bf16", "sign"), make_case(suite, "fp8", "sign")
        other = make_case(suite, "fp8", "cat")
        ref_img, cand_img, other_img = make_image(0), make_image(30), make_image(60)
        submit(worker, tmp_path, ref, suite, encode_png(ref_img))
        submit(worker, tmp_path, cand, suite, encode_png(cand_img))
        submit(worker, tmp_path, make_case(suite, "bf16", "cat"), suite, encode_png(make_image(5)))
        submit(worker, tmp_path, other, suite, encode_png(other_img))
        recorder.wait_for(ref.id, cand.id, other.id)
    finally:
        worker.stop()

    assert not recorder.failed
    ref_scores, cand_scores = recorder.scored[ref.id], recorder.scored[cand.id]
    assert set(ref_scores.metrics) == {"clipscore", "darkness"}  # no reference-based ones
    assert set(cand_scores.metrics) == {"clipscore", "lpips", "darkness", "gap"}
    assert cand_scores.metrics["darkness"] == pytest.approx(255 - float(cand_img.float().mean()))
    assert cand_scores.metrics["gap"] == pytest.approx(
        float((cand_img.float() - ref_img.float()).abs().mean())
    )
    assert cand_scores.details == {"darkness": "sign:CLOSED FOR REPAIRS"}
    assert "darkness" not in recorder.scored[other.id].metrics  # its prompt declares no text
    assert threads == {"darkness": "zimage-score-cpu", "gap": "zimage-score"}
    assert worker.lane_batches  # the background lane did the OCR-like work


def test_a_failing_registered_scorer_fails_its_cases_with_its_name(
    suite: Suite, tmp_path: Path
) -> None:
    def broken(batch: ScoreBatch) -> list[float]:
        raise ValueError("model not on this device")

    recorder = Recorder()
    worker = _worker(recorder)
    try:
        worker.provide([*double_specs(), _spec("broken", score=broken, background=True)])
        ref = make_case(suite, "bf16", "cat", seed=2)
        submit(worker, tmp_path, ref, suite, encode_png(make_image(9)))
        recorder.wait_for(ref.id)
        worker.provide([*double_specs(), _spec("nan", score=lambda b: [float("nan")] * len(b))])
        other = make_case(suite, "bf16", "cat", seed=3)
        submit(worker, tmp_path, other, suite, encode_png(make_image(19)))
        recorder.wait_for(other.id)
    finally:
        worker.stop()
    failure = recorder.failed[ref.id]
    assert isinstance(failure, ScorerError)
    assert "the broken scorer (broken) failed on small/cat-bf16-s2" in failure.message
    assert "model not on this device" in failure.message
    assert "scorer 'nan' returned NaN" in recorder.failed[other.id].message


# -- suites declare the text -----------------------------------------------------------------


def test_a_prompt_declares_its_text_or_the_suite_takes_quotes(tmp_path: Path) -> None:
    declared = """
[[prompts]]
key = "poster"
text = "a movie poster"
expected_text = "THE END"
"""
    plain = load_suite(write_small_suite(tmp_path, extra=declared))
    assert plain.prompt("sign").expected_text is None  # quotes only count when asked
    assert plain.prompt("poster").expected_text == "THE END"
    quoted = load_suite(
        write_small_suite(tmp_path, name="q.toml", suite_extra="text_from_quotes = true")
    )
    assert quoted.prompt("sign").expected_text == "CLOSED FOR REPAIRS"
    assert quoted.prompt("cat").expected_text is None


def test_bad_text_declarations_are_suite_errors(tmp_path: Path) -> None:
    from pytest_zimage_quality.errors import SuiteError

    with pytest.raises(SuiteError, match=r"text_from_quotes.*expected true or false"):
        load_suite(write_small_suite(tmp_path, suite_extra='text_from_quotes = "yes"'))
    blank = '\n[[prompts]]\nkey = "p"\ntext = "x"\nexpected_text = "  "\n'
    with pytest.raises(SuiteError, match="expected_text"):
        load_suite(write_small_suite(tmp_path, name="b.toml", extra=blank))
