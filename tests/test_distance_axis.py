"""The two-axis reading (close or different × not worse or worse) on any reference-based metric."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from pytest_zimage_quality.errors import SuiteError
from pytest_zimage_quality.metrics import (
    REFERENCE_BASED,
    REFERENCE_FREE,
    MetricInfo,
    ScoreBatch,
    ScorerSpec,
    ScorerSpecError,
)
from pytest_zimage_quality.report.vocabulary import legend
from pytest_zimage_quality.settings import HostSpec, Settings
from pytest_zimage_quality.suite import load_suite
from pytest_zimage_quality.summary import RunSummary, build_summary
from tests.helpers import more_prompts, write_small_suite
from tests.helpers.metric_records import CLIP, gated_records
from tests.helpers.summary_records import ENVIRONMENT, SCHEMA

SIMILAR = MetricInfo("dino", "DINO sim.", REFERENCE_BASED, True, close_above=0.9)
LPIPS = MetricInfo("lpips", "LPIPS", REFERENCE_BASED, False, close_below=0.2)


def _zero(batch: ScoreBatch) -> list[float]:
    return [0.0] * len(batch)


def test_closeness_thresholds_belong_to_reference_based_metrics_on_their_side() -> None:
    ok = ScorerSpec("dino", REFERENCE_BASED, True, _zero, close_above=0.9)
    assert ok.describe().close_above == 0.9
    assert ok.describe().to_dict()["close_above"] == 0.9
    assert MetricInfo.from_dict(ok.describe().to_dict()).close_above == 0.9
    bad = [
        ({"kind": REFERENCE_FREE, "higher_is_better": True, "close_above": 0.9}, "reference-based"),
        ({"kind": REFERENCE_BASED, "higher_is_better": True, "close_below": 0.2}, "close_above"),
        ({"kind": REFERENCE_BASED, "higher_is_better": False, "close_above": 0.2}, "close_below"),
        ({"kind": REFERENCE_BASED, "higher_is_better": False, "close_below": float("nan")},
         "finite"),
        ({"kind": REFERENCE_BASED, "higher_is_better": False, "close_below": 0.1,
          "close_above": 0.2}, "not both"),
    ]  # fmt: skip
    for kwargs, message in bad:
        with pytest.raises(ScorerSpecError, match=message):
            ScorerSpec("dino", score=_zero, **kwargs)  # type: ignore[arg-type]


def test_a_bad_distance_metric_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"suite\.distance_metric"):
        load_suite(write_small_suite(tmp_path, suite_extra='distance_metric = "DINO sim"'))


def _summary(tmp_path: Path, suite_extra: str, similarity: float) -> RunSummary:
    tmp_path.mkdir(parents=True, exist_ok=True)
    suite = load_suite(write_small_suite(tmp_path, suite_extra=suite_extra, extra=more_prompts(3)))
    records = [
        r if r.is_reference else r.with_(metrics={**r.metrics, "dino": similarity, "lpips": 0.5})
        for r in gated_records(suite.name, text_drop=0.0)
    ]
    summary = build_summary(
        records,
        suites=[suite],
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),), configs=("bf16", "fp8")),
        environment=ENVIRONMENT,
        run_id="run-1",
        metrics=(CLIP, LPIPS, SIMILAR),
    )
    jsonschema.validate(summary.to_dict(), SCHEMA)
    return summary


def test_the_suites_distance_metric_reads_the_two_axes(tmp_path: Path) -> None:
    close = _summary(tmp_path / "a", 'distance_metric = "dino"', similarity=0.95).suites[0]
    assert close.distance is not None
    assert close.distance.describe() == "DINO sim. > 0.9"
    assert close.configs[1].two_axis == "close and not worse"
    assert any("DINO sim. > 0.9 = close to BF16" in e.text for e in legend(close))
    apart = _summary(tmp_path / "b", 'distance_metric = "dino"', similarity=0.5).suites[0]
    assert apart.configs[1].two_axis == "different but not worse"
    # the suite's own threshold wins over the scorer's
    moved = _summary(
        tmp_path / "c", 'distance_metric = "dino"\ndistance_close = 0.4', similarity=0.5
    ).suites[0]
    assert moved.configs[1].two_axis == "close and not worse"


def test_lpips_stays_the_default_distance_with_the_runs_threshold(tmp_path: Path) -> None:
    suite = _summary(tmp_path, "", similarity=0.95).suites[0]
    assert suite.distance is not None
    assert (suite.distance.metric, suite.distance.threshold) == ("lpips", 0.2)
    assert suite.configs[1].two_axis == "different but not worse"  # LPIPS 0.5 >= 0.2


def test_a_distance_metric_the_run_lacks_gives_no_two_axis_reading(tmp_path: Path) -> None:
    suite = _summary(tmp_path, 'distance_metric = "ssim"', similarity=0.95).suites[0]
    assert suite.distance is None
    assert suite.configs[1].two_axis is None
    assert suite.configs[1].decision == "non-inferior"
