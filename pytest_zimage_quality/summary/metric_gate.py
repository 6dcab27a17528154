"""One gated metric's decision for one candidate config: the record summary.json keeps.

A leaf of the summary package (``model`` types its ``ConfigSummary.metric_gates`` with it,
``metric_gates`` builds it), so the typed summary does not import the code that computes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import stats

__all__ = ["FURTHER", "GATE_METRIC", "MetricGate"]

GATE_METRIC = "gate metric"
FURTHER = "further"


@dataclass(frozen=True)
class MetricGate:
    """One gated metric of one candidate config (summary.json ``metric_gates[<name>]``)."""

    metric: str
    label: str
    role: str  # GATE_METRIC or FURTHER
    margin: float
    alpha: float  # this metric's level: the suite's alpha / k
    k: int  # gated metrics of the suite (the Bonferroni divisor)
    band: float | None
    prompts: str | tuple[str, ...]
    decision: str
    gate: stats.GateResult | None
    outside_band: tuple[str, ...] = ()  # case ids whose paired drop exceeds the band
    missing_prompts: tuple[str, ...] = ()
    planned_prompts: int = 0
    notes: tuple[str, ...] = ()

    @property
    def label_decision(self) -> str:
        return stats.DECISION_LABELS.get(self.decision, self.decision.upper())

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "label": self.label,
            "role": self.role,
            "margin": self.margin,
            "alpha": self.alpha,
            "k": self.k,
            "band": self.band,
            "prompts": self.prompts if isinstance(self.prompts, str) else list(self.prompts),
            "decision": self.decision,
            "gate": None if self.gate is None else self.gate.to_dict(),
            "outside_band": list(self.outside_band),
            "missing_prompts": list(self.missing_prompts),
            "planned_prompts": self.planned_prompts,
            "notes": list(self.notes),
        }
