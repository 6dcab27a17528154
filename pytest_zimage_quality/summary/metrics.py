"""Every metric of the run, per config and per (prompt, config) cell, from the records.

CLIPScore and LPIPS keep their historic fields in the summary; this adds one entry per metric
(built-in or registered, docs/scorers.md) under ``metrics``: its mean and spread per config,
and for a candidate's reference-free metric the paired mean difference from the reference
images of the same prompt and seed. Infinite values (PSNR of identical images) are counted,
not averaged: JSON has no infinity, and a mean with one would say nothing.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .. import stats
from ..metrics import REFERENCE_BASED, REFERENCE_FREE, MetricInfo
from ..records import CaseRecord

__all__ = [
    "DistanceAxis",
    "MetricColumn",
    "cell_metrics",
    "distance_axis",
    "infer_metrics",
    "metric_columns",
    "two_axis_reading",
]


@dataclass(frozen=True)
class MetricColumn:
    """One metric over one config's images."""

    name: str
    n: int
    mean: float | None
    std: float | None
    n_infinite: int = 0
    #: Reference-free metrics of a candidate: the mean over its paired reference images, and
    #: the mean paired difference (candidate - reference, in the metric's own direction).
    reference_mean: float | None = None
    delta: float | None = None

    def to_dict(self) -> dict[str, float | int | str | None]:
        return {
            "name": self.name,
            "n": self.n,
            "mean": self.mean,
            "std": self.std,
            "n_infinite": self.n_infinite,
            "reference_mean": self.reference_mean,
            "delta": self.delta,
        }


def _finite(values: Iterable[float]) -> tuple[list[float], int]:
    kept, infinite = [], 0
    for value in values:
        if math.isfinite(value):
            kept.append(value)
        else:
            infinite += 1
    return kept, infinite


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def metric_columns(
    records: Sequence[CaseRecord], metrics: Sequence[MetricInfo], *, is_ref: bool
) -> dict[str, MetricColumn]:
    """``metrics`` over ``records`` (one config), leaving out metrics with no value there."""
    columns = {}
    for info in metrics:
        rows = [r for r in records if info.name in r.metrics]
        if not rows:
            continue
        values, infinite = _finite(r.metrics[info.name] for r in rows)
        ref_mean = delta = None
        if not is_ref and info.kind == REFERENCE_FREE:
            pairs = [
                (r.metrics[info.name], r.reference_metrics[info.name])
                for r in rows
                if info.name in r.reference_metrics
            ]
            finite = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
            ref_mean = _mean([b for _, b in finite])
            delta = _mean([a - b for a, b in finite])
        columns[info.name] = MetricColumn(
            name=info.name,
            n=len(rows),
            mean=_mean(values),
            std=statistics.stdev(values) if len(values) >= 2 else None,
            n_infinite=infinite,
            reference_mean=ref_mean,
            delta=delta,
        )
    return columns


def cell_metrics(records: Sequence[CaseRecord]) -> dict[str, float]:
    """Mean of each metric over one (prompt, config) cell's seeds (finite values only)."""
    names = sorted({name for r in records for name in r.metrics})
    out = {}
    for name in names:
        values, _ = _finite(r.metrics[name] for r in records if name in r.metrics)
        if values:
            out[name] = statistics.fmean(values)
    return out


def infer_metrics(
    records: Iterable[CaseRecord], known: Sequence[MetricInfo]
) -> tuple[MetricInfo, ...]:
    """``known`` (what the scorers said), plus any metric the records hold that it lacks
    (records read back without the run's scorers): a metric references also have is taken
    for reference-free; its direction is unknown, so higher is assumed and said so."""
    names = {info.name for info in known}
    found: dict[str, bool] = {}
    for record in records:
        for name in record.metrics:
            if name not in names:
                found[name] = found.get(name, False) or record.is_reference
    extra = tuple(
        MetricInfo(
            name=name,
            label=name,
            kind=REFERENCE_FREE if on_reference else REFERENCE_BASED,
            higher_is_better=True,
            facts={"note": "direction unknown (no scorer description in this run)"},
        )
        for name, on_reference in found.items()
    )
    return (*known, *extra)


@dataclass(frozen=True)
class DistanceAxis:
    """The reference-based metric a suite reads on the two axes (close or different), and
    where closeness ends: below ``threshold`` for a distance, above it for a similarity."""

    metric: str
    label: str
    threshold: float | None  # None: the metric has no threshold, so no closeness reading
    close_below: bool  # a distance (LPIPS): close below; a similarity: close above

    def is_close(self, mean: float) -> bool:
        assert self.threshold is not None
        return mean < self.threshold if self.close_below else mean > self.threshold

    def describe(self) -> str:
        if self.threshold is None:
            return f"{self.label}: no closeness threshold"
        return f"{self.label} {'<' if self.close_below else '>'} {self.threshold:g}"

    def to_dict(self) -> dict[str, str | float | bool | None]:
        return {
            "metric": self.metric,
            "label": self.label,
            "threshold": self.threshold,
            "close_below": self.close_below,
        }


def distance_axis(
    name: str,
    metrics: Sequence[MetricInfo],
    *,
    lpips_close: float,
    suite_threshold: float | None = None,
) -> DistanceAxis | None:
    """The suite's distance metric as this run knows it (None: not a reference-based metric
    of the run). Threshold: the suite's ``distance_close`` > for LPIPS ``--zimage-lpips-close``
    > the scorer's ``close_below``/``close_above``."""
    info = next((m for m in metrics if m.name == name), None)
    if info is None and name == "lpips":  # records read back without the run's scorers
        info = MetricInfo("lpips", "LPIPS", REFERENCE_BASED, False)
    if info is None or not info.reference_based:
        return None
    own = info.close_below if info.close_below is not None else info.close_above
    threshold = suite_threshold
    if threshold is None:
        threshold = lpips_close if name == "lpips" else own
    return DistanceAxis(name, info.label, threshold, close_below=not info.higher_is_better)


def two_axis_reading(axis: DistanceAxis | None, mean: float | None, decision: str) -> str | None:
    """The two-axis words (``stats.two_axis_verdict``) for a candidate whose distance-metric
    mean is ``mean``; None without a distance reading (as without LPIPS before)."""
    if axis is None or axis.threshold is None or mean is None or not math.isfinite(mean):
        return None
    # two_axis_verdict reads a distance against its threshold: give it this axis's side.
    return stats.two_axis_verdict(
        0.0 if axis.is_close(mean) else 1.0, decision, close_threshold=0.5
    )


def by_name(metrics: Sequence[MetricInfo]) -> Mapping[str, MetricInfo]:
    return {info.name: info for info in metrics}
