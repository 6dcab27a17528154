"""Which metric a suite's gate runs on, and why an option naming one is unusable.

``--zimage-gate-metric`` > the suite file's ``gate_metric`` > CLIPScore; the run must have
measured it, and it must be a metric of the image alone (not one against the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..metrics import MetricInfo
from ..stages import CLIPSCORE
from .gate import gate_metric_choices

if TYPE_CHECKING:
    from ..settings import Settings
    from ..suite import Suite

__all__ = ["gate_metric_of", "gate_metric_problem"]


def gate_metric_of(
    suite: Suite | None, metrics: Sequence[MetricInfo], settings: Settings | None = None
) -> MetricInfo | None:
    """The suite's gate metric (``--zimage-gate-metric`` > suite file > clipscore) as the run
    knows it; None when the run did not measure it."""
    name = (
        settings.gate_metric_for(suite)
        if settings is not None
        else suite.gate_metric
        if suite is not None
        else CLIPSCORE.name
    )
    if name == CLIPSCORE.name:
        return next((m for m in metrics if m.name == name), CLIPSCORE)
    return next((m for m in metrics if m.name == name), None)


def gate_metric_problem(settings: Settings, metrics: Sequence[MetricInfo]) -> str | None:
    """Why ``--zimage-gate-metric`` names no metric the gate can use in this run (a usage
    error), or None. Checked once the run's scorers are registered."""
    name = settings.gate_metric
    if name is None or name == CLIPSCORE.name:
        return None
    info = next((m for m in metrics if m.name == name), None)
    if info is not None and not info.reference_based:
        return None
    why = "is not a metric of this run" if info is None else "compares with the reference image"
    return (
        f"--zimage-gate-metric {name!r} {why}; the metrics it can name here: "
        f"{gate_metric_choices(metrics)}"
    )
