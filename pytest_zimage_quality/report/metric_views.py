"""The run's metrics in the reports: which to show, their headers, and their cells.

Shared by the terminal and report.html so both show the same columns. By default every
metric but the image-similarity extras (``clip_image``, ``psnr``, ``ssim``) is shown; ``-v``
(and report.html, which has room) show them all. A candidate's reference-free metric reads
``mean (Δ)``, Δ being its paired difference from the reference images; a reference-based one
reads its mean (the reference has none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..metrics import REFERENCE_FREE, MetricInfo
from .charts import Chart, Column, clip_chart

if TYPE_CHECKING:
    from ..records import CaseRecord
    from ..summary import ConfigSummary, SuiteSummary

__all__ = [
    "DETAIL_ONLY",
    "GRID_SKIPPED",
    "config_metric_cell",
    "metric_charts",
    "metric_gate_rows",
    "metric_header",
    "metric_rows",
    "metric_value",
    "prompt_metric_rows",
    "record_metric_facts",
    "shown_metrics",
]

#: Shown only with -v in the terminal (the image-similarity extras; LPIPS stands for them).
DETAIL_ONLY = frozenset({"clip_image", "psnr", "ssim"})
#: Already on every grid caption under their own names.
GRID_SKIPPED = frozenset({"clipscore", "lpips"})


def shown_metrics(metrics: Sequence[MetricInfo], *, verbose: bool) -> list[MetricInfo]:
    return [m for m in metrics if verbose or m.name not in DETAIL_ONLY]


def metric_header(info: MetricInfo) -> str:
    """``Text acc. ↑``: the label and which way is better."""
    return f"{info.label} {'↑' if info.higher_is_better else '↓'}"


def _digits(info: MetricInfo) -> int:
    return 2 if info.name == "psnr" else 3


def metric_value(info: MetricInfo, value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    digits = _digits(info)
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def config_metric_cell(info: MetricInfo, config: ConfigSummary) -> str:
    column = config.metrics.get(info.name)
    if column is None:
        return "—"
    text = metric_value(info, column.mean)
    if column.n_infinite:
        text += f" (+{column.n_infinite} ∞)"
    if info.kind == REFERENCE_FREE and not config.is_reference and column.delta is not None:
        text += f" ({metric_value(info, column.delta, signed=True)})"
    return text


def metric_gate_rows(suite: SuiteSummary) -> tuple[list[str], list[list[str]]]:
    """One row per candidate config and gated metric, when the suite gates on more than one
    metric ([gate.metrics.<name>]): each metric's own decision, its paired mean Δ and monotone
    lower bound (in the metric's direction), margin, level α/k and prompts; no rows otherwise."""
    headers = [
        "config",
        "gated metric",
        "decision",
        "mean Δ",
        "lower bound",
        "margin δ",
        "α/k",
        "prompts",
        "outside band",
    ]
    rows = []
    for config in suite.configs:
        for entry in config.metric_gates.values():
            gate = entry.gate
            digits = 2 if entry.metric == "psnr" else 4
            rows.append(
                [
                    config.label,
                    entry.label,
                    entry.label_decision,
                    "—" if gate is None else f"{gate.mean_diff:+.{digits}f}",
                    "—"
                    if gate is None or gate.lower_bound is None
                    else f"{gate.lower_bound:+.{digits}f}",
                    f"{entry.margin:g}",
                    f"{entry.alpha:.4g}",
                    f"{gate.n_prompts if gate is not None else 0} of {entry.planned_prompts}"
                    f" ({entry.prompts if isinstance(entry.prompts, str) else 'listed'})",
                    "—" if entry.band is None else f"{len(entry.outside_band)} (> {entry.band:g})",
                ]
            )
    return headers, rows


def metric_rows(
    suite: SuiteSummary, metrics: Sequence[MetricInfo]
) -> tuple[list[str], list[list[str]]]:
    """One row per config, one column per metric."""
    headers = ["config", *(metric_header(m) for m in metrics)]
    rows = [
        [config.label, *(config_metric_cell(m, config) for m in metrics)]
        for config in suite.configs
    ]
    return headers, rows


def prompt_metric_rows(suite: SuiteSummary, info: MetricInfo) -> tuple[list[str], list[list[str]]]:
    """Per prompt (those with a value), the metric's mean per config."""
    headers = ["prompt", *(c.label for c in suite.configs)]
    rows = []
    for prompt in suite.prompts:
        cells = [prompt.cells.get(c.key) for c in suite.configs]
        values = [None if cell is None else cell.metrics.get(info.name) for cell in cells]
        if all(v is None for v in values):
            continue
        rows.append([prompt.key, *(metric_value(info, v) for v in values)])
    return headers, rows


def record_metric_facts(
    record: CaseRecord, metrics: Mapping[str, MetricInfo]
) -> list[tuple[str, str]]:
    """(label, value) of each metric of one image for a grid caption, the built-in CLIPScore
    and LPIPS left out (the caption has them); details come separately."""
    facts = []
    for name, value in record.metrics.items():
        if name in GRID_SKIPPED:
            continue
        info = metrics.get(name) or MetricInfo(
            name=name, label=name, kind=REFERENCE_FREE, higher_is_better=True
        )
        facts.append((info.label, metric_value(info, value)))
    return facts


def metric_charts(
    suite: SuiteSummary,
    configs: Sequence[ConfigSummary],
    columns: Sequence[Column],
    metrics: Sequence[MetricInfo],
) -> tuple[Chart, ...]:
    """The CLIPScore chart's layout for each further metric (LPIPS has the speed chart)."""
    charts = []
    for info in metrics:
        if info.name in GRID_SKIPPED:
            continue
        means = {
            (prompt.key, key): cell.metrics[info.name]
            for prompt in suite.prompts
            for key, cell in prompt.cells.items()
            if info.name in cell.metrics
        }
        config_means = {
            c.key: column.mean
            for c in configs
            if (column := c.metrics.get(info.name)) is not None and column.mean is not None
        }
        chart = clip_chart(
            columns,
            [p.key for p in suite.prompts if any(k[0] == p.key for k in means)],
            means,
            config_means,
            suite.reference.key,
            metric=metric_header(info),
            digits=_digits(info),
        )
        if chart is not None:
            charts.append(chart)
    return tuple(charts)
