"""Each gated metric's decision for one candidate config, and the config's decision from them.

A suite gates its candidates on its gate metric and on any further metrics it names
(``[gate.metrics.<name>]``, :mod:`pytest_zimage_quality.metric_gates`). Every gated metric gets
its own paired non-inferiority decision through the same gate (``gate.candidate_gate``: stages,
monotone bounds, INCOMPLETE rules), each at ``alpha / k`` (Bonferroni over the k gated
metrics), with its own margin, prompts and per-case band. The config is NON-INFERIOR only when
every gated metric is; INFERIOR when any is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .. import stats
from ..metric_gates import ALL_PROMPTS, MetricGateSpec, combine_decisions
from ..stages import pair_of
from .gate import CandidateGate, candidate_gate
from .metric_gate import FURTHER, GATE_METRIC, MetricGate

if TYPE_CHECKING:
    from ..metrics import MetricInfo
    from ..planning import SuitePlan
    from ..records import CaseRecord
    from ..settings import GateParameters
    from ..suite import Prompt

__all__ = [
    "FURTHER",
    "GATE_METRIC",
    "MetricGate",
    "config_decision",
    "decision_notes",
    "further_metric_gates",
    "primary_gate",
]


def primary_gate(
    judged: CandidateGate, info: MetricInfo | None, name: str, gate: GateParameters, k: int
) -> MetricGate:
    """The gate metric's entry (its figures are also the config's ``gate``)."""
    return MetricGate(
        metric=name,
        label=info.label if info is not None else name,
        role=GATE_METRIC,
        margin=gate.margin,
        alpha=gate.alpha,
        k=k,
        band=None,
        prompts=ALL_PROMPTS,
        decision=judged.decision,
        gate=judged.result,
        missing_prompts=judged.missing,
        planned_prompts=judged.planned,
        notes=(),
    )


def further_metric_gates(
    rows: Sequence[CaseRecord],
    specs: Sequence[MetricGateSpec],
    gate: GateParameters,
    *,
    metrics: Sequence[MetricInfo],
    prompts: Sequence[Prompt],
    prompt_order: Sequence[str],
    plan: SuitePlan | None,
    stopped_early: str,
    k: int,
) -> dict[str, MetricGate]:
    """Each further gated metric's decision for one candidate config's ``rows``; ``gate``
    carries the suite's parameters with alpha already divided by ``k``."""
    known = {m.name: m for m in metrics}
    planned = {g.metric: g.band for g in plan.further} if plan is not None else {}
    out: dict[str, MetricGate] = {}
    for spec in specs:
        info = known.get(spec.metric)
        leave_out = {p.key for p in prompts if not spec.selects(p)}
        sized = planned.get(spec.metric)  # the plan's band (a scaled one needs the run's size)
        band = sized.width if sized is not None else spec.band
        entry = MetricGate(
            metric=spec.metric,
            label=info.label if info is not None else spec.metric,
            role=FURTHER,
            margin=spec.margin,
            alpha=gate.alpha,
            k=k,
            band=band,
            prompts=spec.prompts,
            decision=stats.INCOMPLETE,
            gate=None,
        )
        if info is None or info.reference_based:
            why = (
                "was not measured in this run (is its scorer installed and registered?)"
                if info is None
                else "compares with the reference image: a gate needs a metric of the image "
                "against its prompt"
            )
            out[spec.metric] = dataclasses.replace(
                entry, notes=(f"INCOMPLETE: gated metric {spec.metric!r} {why}",)
            )
            continue
        judged = candidate_gate(
            rows,
            dataclasses.replace(gate, margin=spec.margin),
            prompt_order=prompt_order,
            plan=None if plan is None else dataclasses.replace(plan, margin=spec.margin),
            stopped_early=stopped_early,
            metric=info,
            leave_out=leave_out,
        )
        out[spec.metric] = dataclasses.replace(
            entry,
            decision=judged.decision,
            gate=judged.result,
            outside_band=_outside_band(rows, band, info, leave_out),
            missing_prompts=judged.missing,
            planned_prompts=judged.planned,
            notes=tuple(f"{info.label}: {note}" for note in judged.notes),
        )
    return out


def _outside_band(
    rows: Sequence[CaseRecord], band: float | None, info: MetricInfo, leave_out: set[str]
) -> tuple[str, ...]:
    if band is None:
        return ()
    out = []
    for record in rows:
        pair = None if record.prompt in leave_out else pair_of(record, info)
        if pair is not None and pair[1] - pair[0] < -band:
            out.append(record.case_id)
    return tuple(out)


def config_decision(gates: Mapping[str, MetricGate]) -> str:
    """NON-INFERIOR only if every gated metric is; INFERIOR if any is (metric_gates.py)."""
    return combine_decisions([g.decision for g in gates.values()])


def decision_notes(gates: Mapping[str, MetricGate]) -> tuple[str, ...]:
    """One line per further gated metric whose decision differs from NON-INFERIOR, and its
    own notes, for the config's notes."""
    lines: list[str] = []
    for entry in gates.values():
        if entry.role != FURTHER:
            continue
        lines.extend(entry.notes)
        if entry.decision != stats.NON_INFERIOR:
            lines.append(
                f"gated metric {entry.label}: {entry.label_decision} (margin {entry.margin:g}, "
                f"α/k = {entry.alpha:.4g}): the config is NON-INFERIOR only if every gated "
                "metric is"
            )
        if entry.outside_band:
            lines.append(
                f"gated metric {entry.label}: {len(entry.outside_band)} case(s) dropped more "
                f"than the band {entry.band:g}: {', '.join(entry.outside_band[:5])}"
                + (" …" if len(entry.outside_band) > 5 else "")
            )
    return tuple(lines)
