"""Aggregate per-case records into the run summary: the per-config gate, the tables, the verdict.

Plain inputs in, typed objects out (:mod:`.model`): records, the suites they came from, the
settings in force and the environment the pytest layer gathered. No session, no network, no
pytest, so a summary can be built (and tested) from records alone. Statistics come from
:mod:`pytest_zimage_quality.stats`.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import stats
from ..metric_gates import MetricGateSpec, bonferroni_alpha, further_gates
from ..metrics import MetricInfo
from ..planning import SuitePlan, plan_suites
from ..records import CaseRecord
from ..stages import CLIPSCORE
from .gate import (
    candidate_gate,
    exit_decision,
    further_look_notes,
    gate_metric_choices,
    generations_saved,
)
from .gate_metric import gate_metric_of, gate_metric_problem
from .metric_gates import (
    MetricGate,
    config_decision,
    decision_notes,
    further_metric_gates,
    primary_gate,
)
from .metrics import (
    DistanceAxis,
    cell_metrics,
    distance_axis,
    infer_metrics,
    metric_columns,
    two_axis_reading,
)
from .model import (
    ADVISORY_BANNER,
    RANDOM_BANNER,
    REFERENCE,
    SIMULATED_BANNER,
    ConfigSummary,
    Environment,
    Parameter,
    PromptCell,
    PromptSummary,
    Reference,
    RunSummary,
    SuiteSummary,
)
from .speed import config_speed

if TYPE_CHECKING:
    from ..look_ledger import EarlierLook
    from ..settings import GateParameters, Settings
    from ..suite import Prompt, Suite

__all__ = [
    "build_summary",
    "describe_settings",
    "gate_metric_choices",
    "gate_metric_of",
    "gate_metric_problem",
]
PER_PROMPT_CORRECTION = "Holm–Bonferroni across the prompts of each config (family-wise error ≤ α)"
GATE_PARAMETERS = ("tolerance", "margin", "alpha", "clip_floor")


def _describe(values: Sequence[float]) -> stats.Description | None:
    return stats.describe(values) if values else None


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _scored(records: Iterable[CaseRecord]) -> list[CaseRecord]:
    """Records with a finite CLIPScore (a NaN fails its case and is left out of every figure)."""
    return [r for r in records if _finite(r.clipscore)]


def _legacy(decision: str) -> str:
    return stats.LEGACY_VERDICT.get(decision, stats.INCONCLUSIVE)


def _count_outcomes(records: Iterable[CaseRecord]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        counts[record.outcome or "unknown"] += 1
    return dict(sorted(counts.items()))


def _config_summary(
    key: str,
    rows: Sequence[CaseRecord],
    reference_rows: Sequence[CaseRecord],
    *,
    label: str,
    is_ref: bool,
    gate: GateParameters,
    prompt_order: Sequence[str],
    metrics: Sequence[MetricInfo] = (),
    gate_metric: MetricInfo | None = CLIPSCORE,
    plan: SuitePlan | None = None,
    stopped_early: str = "",
    further: Sequence[MetricGateSpec] = (),
    prompts: Sequence[Prompt] = (),
    distance: DistanceAxis | None = None,
) -> tuple[ConfigSummary, dict[str, stats.PromptComparison]]:
    scored = _scored(rows)
    lpips = (
        None
        if is_ref
        else _describe([r.lpips for r in scored if r.lpips is not None and _finite(r.lpips)])
    )
    judged = (
        None
        if is_ref
        else candidate_gate(
            rows,
            gate,
            prompt_order=prompt_order,
            plan=plan,
            stopped_early=stopped_early,
            metric=gate_metric,
        )
    )
    result = judged.result if judged else None
    decision = judged.decision if judged else REFERENCE
    gates: dict[str, MetricGate] = {}
    if judged is not None and further:  # every gated metric at alpha / k (metric_gates.py)
        k = len(further) + 1
        name = gate_metric.name if gate_metric is not None else "gate metric"
        gates = {name: primary_gate(judged, gate_metric, name, gate, k)}
        gates |= further_metric_gates(
            rows,
            further,
            gate,
            metrics=metrics,
            prompts=prompts,
            prompt_order=prompt_order,
            plan=plan,
            stopped_early=stopped_early,
            k=k,
        )
        decision = config_decision(gates)
    columns = metric_columns(scored, metrics, is_ref=is_ref)
    two_axis = None
    if result is not None and distance is not None:  # the suite's distance_metric (LPIPS)
        column = columns.get(distance.metric)
        mean = column.mean if column is not None else None
        if mean is None and distance.metric == "lpips" and lpips is not None:
            mean = lpips.mean  # records without a metrics map
        two_axis = two_axis_reading(distance, mean, decision)
    comparisons = judged.comparisons if judged else ()
    summary = ConfigSummary(
        key=key,
        label=label,
        role="reference" if is_ref else "candidate",
        n_cases=len(rows),
        n_scored=len(scored),
        n_prompts=len({r.prompt for r in scored}),
        n_seeds=len({r.seed for r in scored}),
        clipscore=_describe([r.clipscore for r in scored if r.clipscore is not None]),
        lpips=lpips,
        speed=config_speed(rows, reference_rows, is_ref),
        gate=result,
        decision=decision,
        verdict=(
            (judged.verdict if judged.result is None or not gates else _legacy(decision))
            if judged
            else REFERENCE
        ),
        two_axis=two_axis,
        expected_fail_prompts=judged.excluded if judged else (),
        flagged_prompts=tuple(c.prompt for c in comparisons if c.flagged),
        outcomes=_count_outcomes(rows),
        metrics=columns,
        missing_prompts=judged.missing if judged else (),
        planned_prompts=judged.planned if judged else 0,
        stages=judged.staged if judged else None,
        notes=(*judged.notes, *decision_notes(gates)) if judged else (),
        metric_gates=gates,
    )
    return summary, {c.prompt: c for c in comparisons}


def _cell(
    rows: Sequence[CaseRecord], is_ref: bool, comparison: stats.PromptComparison | None
) -> PromptCell:
    deltas = [r.delta for r in rows if r.delta is not None and math.isfinite(r.delta)]
    lp = [r.lpips for r in rows if r.lpips is not None and math.isfinite(r.lpips)]
    return PromptCell(
        n=len(rows),
        clipscore_mean=statistics.fmean(r.clipscore for r in rows if r.clipscore is not None),
        expected_fail=any(r.expected_fail for r in rows),
        is_reference=is_ref,
        delta=None if is_ref or not deltas else statistics.fmean(deltas),
        lpips_mean=None if is_ref or not lp else statistics.fmean(lp),
        p_value=comparison.p_value if comparison else None,
        p_adjusted=comparison.p_adjusted if comparison else None,
        flagged=comparison.flagged if comparison else None,
        metrics=cell_metrics(rows),
    )


def _suite_summary(
    suite: Suite | None,
    name: str,
    records: Sequence[CaseRecord],
    settings: Settings,
    gate: GateParameters,
    metrics: Sequence[MetricInfo] = (),
    *,
    plan: SuitePlan | None = None,
    stopped_early: str = "",
    earlier: Mapping[str, EarlierLook] | None = None,
) -> SuiteSummary:
    by_config: dict[str, list[CaseRecord]] = defaultdict(list)
    for record in records:
        by_config[record.config].append(record)
    reference = records[0].reference
    config_order = (
        [suite.reference, *[c.key for c in suite.candidate_configs]] if suite else sorted(by_config)
    )
    config_order = [key for key in config_order if key in by_config] + sorted(
        set(by_config) - set(config_order)
    )
    prompt_order = (
        [p.key for p in sorted(suite.prompts, key=lambda p: p.stage)]
        if suite
        else sorted({r.prompt for r in records})
    )
    labels = {r.config: r.config_label for r in records}

    family = gate  # the suite's parameters as given (alpha: the whole family's)
    distance = distance_axis(
        suite.distance_metric if suite else "lpips",
        metrics,
        lpips_close=settings.lpips_close,
        suite_threshold=suite.distance_close if suite else None,
    )
    gate_metric = gate_metric_of(suite, metrics, settings)
    further = further_gates(suite.metric_gates, settings.gate_metric_for(suite)) if suite else ()
    # Bonferroni over the k gated metrics: each decided at alpha / k (metric_gates.py).
    gate = dataclasses.replace(gate, alpha=bonferroni_alpha(gate.alpha, len(further) + 1))
    configs = []
    comparisons: dict[str, dict[str, stats.PromptComparison]] = {}
    for key in config_order:
        config, comparisons[key] = _config_summary(
            key,
            by_config[key],
            by_config.get(reference, []),
            label=labels.get(key, key),
            is_ref=key == reference,
            gate=gate,
            prompt_order=prompt_order,
            metrics=metrics,
            gate_metric=gate_metric,
            plan=plan,
            stopped_early=stopped_early,
            further=further,
            prompts=suite.prompts if suite else (),
            distance=distance,
        )
        configs.append(config)

    prompts = []
    for prompt in prompt_order:
        prompt_rows = [r for r in records if r.prompt == prompt]
        if not prompt_rows:
            continue
        cells = {}
        for key in config_order:
            cell_rows = _scored(r for r in prompt_rows if r.config == key)
            if cell_rows:
                comparison = comparisons[key].get(prompt)
                cells[key] = _cell(cell_rows, key == reference, comparison)
        prompts.append(
            PromptSummary(
                key=prompt, text=prompt_rows[0].prompt_text, tags=_tags(suite, prompt), cells=cells
            )
        )

    return SuiteSummary(
        name=name,
        path=str(suite.path) if suite else None,
        sha256=suite.sha256 if suite else None,
        reference=Reference(reference, labels.get(reference, reference)),
        parameters={p: Parameter(getattr(family, p), family.source(p)) for p in GATE_PARAMETERS},
        lpips_close=settings.lpips_close,
        per_prompt_correction=PER_PROMPT_CORRECTION,
        counts=_count_outcomes(records),
        configs=tuple(configs),
        prompts=tuple(prompts),
        gate_metric=settings.gate_metric_for(suite),
        plan=plan,
        notes=tuple(
            further_look_notes(
                by_config,
                reference,
                earlier=earlier,
                prompts_now=plan.gated_prompts if plan else (),
            )
        ),
        generations_saved=generations_saved(plan, configs),
        distance=distance,
    )


def _tags(suite: Suite | None, prompt: str) -> tuple[str, ...]:
    if suite is None:
        return ()
    try:
        return tuple(suite.prompt(prompt).tags)
    except KeyError:
        return ()


def _plan(suite: Suite, settings: Settings) -> SuitePlan | None:
    """The plan of ``suite`` for the settings' selection (when the run made none: xdist)."""
    try:
        cases = suite.cases(
            configs=settings.configs, prompts=settings.prompts, seeds=settings.seeds_for(suite)
        )
    except KeyError:
        return None
    return plan_suites([(suite, case) for case in cases], settings).get(suite.name)


def describe_settings(settings: Settings) -> dict[str, Any]:
    """The options in force, JSON-ready; header values are never included."""
    data = dataclasses.asdict(settings)
    data.pop("headers", None)
    data["header_names"] = list(settings.header_names)
    data["hosts"] = [str(host) for host in settings.hosts]
    return {key: (str(value) if isinstance(value, Path) else value) for key, value in data.items()}


def build_summary(
    records: Sequence[CaseRecord],
    *,
    suites: Iterable[Suite],
    settings: Settings,
    environment: Environment,
    run_id: str,
    created: str | None = None,
    metrics: Sequence[MetricInfo] = (),
    plans: Mapping[str, SuitePlan] | None = None,
    stopped_early: str = "",
    earlier_looks: Mapping[str, Mapping[str, EarlierLook]] | None = None,
) -> RunSummary:
    """The run summary of ``records``; ``suites`` are the suite files they came from, if known;
    ``metrics`` describe the run's scorers (metrics the records hold beyond them are added).

    ``plans``: each suite's plan made before the run (else made here from the suite and the
    settings' selection); ``stopped_early``: why the run stopped before its last case (-x,
    Ctrl-C, SIGTERM), which makes every candidate config INCOMPLETE; ``earlier_looks``: by
    suite, the verdicts earlier runs showed (``look_ledger.read_looks``), for the further-look
    note.
    """
    metrics = infer_metrics(records, metrics)
    by_suite: dict[str, list[CaseRecord]] = defaultdict(list)
    for record in records:
        by_suite[record.suite].append(record)
    suites_by_name: Mapping[str, Suite] = {s.name: s for s in suites}
    summaries = []
    for name, rows in by_suite.items():
        suite = suites_by_name.get(name)
        gate = settings.gate_for(suite) if suite else settings.gate_for_defaults()
        plan = (plans or {}).get(name) or (_plan(suite, settings) if suite else None)
        summaries.append(
            _suite_summary(
                suite,
                name,
                rows,
                settings,
                gate,
                metrics,
                plan=plan,
                stopped_early=stopped_early,
                earlier=(earlier_looks or {}).get(name),
            )
        )
    banners = []
    if settings.advisory:
        banners.append(ADVISORY_BANNER)
    if settings.simulated or any(r.simulated for r in records):
        banners.append(SIMULATED_BANNER)
    if settings.random_weights or any(r.random_weights for r in records):
        banners.append(RANDOM_BANNER)
    return RunSummary(
        run_id=run_id,
        created=created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        simulated=settings.simulated,
        random_weights=settings.random_weights,
        banners=tuple(banners),
        exit=exit_decision(summaries, settings, metrics, stopped_early=stopped_early),
        options=describe_settings(settings),
        environment=environment,
        n_cases=len(records),
        suites=tuple(summaries),
        metrics=tuple(metrics),
    )
