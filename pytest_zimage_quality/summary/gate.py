"""The gate's part of the summary: each candidate config's decision, and the run's exit.

A candidate config's decision is its gate's (``stats.noninferiority_gate``), or for a suite with
stages the sequential design's (``stages.analyse``); INCOMPLETE when it has no usable pair, when
a sequential design stopped undecided, and for every config of a run that stopped early. Only
NON-INFERIOR lets a run pass (``stats.gate_exit``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import stats
from ..metrics import MetricInfo
from ..stages import CLIPSCORE, StageResult, analyse, paired_scores
from .model import NO_DATA, ConfigSummary, ExitDecision, SuiteSummary

if TYPE_CHECKING:
    from ..look_ledger import EarlierLook
    from ..planning import SuitePlan
    from ..records import CaseRecord
    from ..settings import GateParameters, Settings

__all__ = [
    "CandidateGate",
    "candidate_gate",
    "config_gate",
    "exit_decision",
    "further_look_notes",
    "gate_decision",
    "gate_metric_choices",
    "generations_saved",
    "shown_looks",
]


def config_gate(
    candidates: Sequence[CaseRecord],
    gate: GateParameters,
    *,
    prompt_order: Sequence[str],
    alpha: float | None = None,
    metric: MetricInfo = CLIPSCORE,
) -> tuple[stats.GateResult | None, tuple[stats.PromptComparison, ...], list[str]]:
    """The gate result, per-prompt comparisons and expected-fail prompts of one candidate config
    on ``metric`` (CLIPScore unless the suite names another; ``alpha``: the level of the bounds
    when a sequential look sets it, else the suite's)."""
    excluded = sorted({r.prompt for r in candidates if r.expected_fail})
    ref, cand = paired_scores(candidates, [p for p in prompt_order if p not in excluded], metric)
    if not ref:
        return None, (), excluded
    level = gate.alpha if alpha is None else alpha
    result = stats.noninferiority_gate(ref, cand, margin=gate.margin, alpha=level)
    comparisons = stats.per_prompt_comparisons(ref, cand, alpha=gate.alpha, margin=gate.margin)
    return result, tuple(comparisons), excluded


def gate_decision(
    gate: stats.GateResult | None, staged: StageResult | None, *, stopped_early: str
) -> str:
    """A candidate config's decision: INCOMPLETE for no usable pair, an undecided sequential
    design or a run that stopped early; else the sequential design's, else the gate's."""
    if stopped_early or gate is None:
        return stats.INCOMPLETE
    if staged is not None:
        return staged.decision or stats.INCOMPLETE
    return gate.decision


@dataclass(frozen=True)
class CandidateGate:
    """Everything the summary says about one candidate config's gate."""

    result: stats.GateResult | None
    comparisons: tuple[stats.PromptComparison, ...]
    excluded: tuple[str, ...]  # expected to fail: left out
    staged: StageResult | None
    decision: str
    verdict: str  # the decision in schema-1 words
    missing: tuple[str, ...]  # planned prompts without a usable pair
    planned: int
    notes: tuple[str, ...]


def candidate_gate(
    rows: Sequence[CaseRecord],
    gate: GateParameters,
    *,
    prompt_order: Sequence[str],
    plan: SuitePlan | None,
    stopped_early: str,
    metric: MetricInfo | None = CLIPSCORE,
    leave_out: Collection[str] = (),
) -> CandidateGate:
    """One candidate config's gate on ``metric``, its decision and the notes that explain it
    (``metric`` None: the suite's gate metric was not measured, so there is no gate;
    ``leave_out``: prompts outside a further gated metric's prompt filter)."""
    if metric is None or metric.reference_based:
        return CandidateGate(
            result=None,
            comparisons=(),
            excluded=(),
            staged=None,
            decision=stats.INCOMPLETE,
            verdict=NO_DATA,
            missing=(),
            planned=0,
            notes=("INCOMPLETE: the suite's gate metric gives no gate in this run",),
        )
    staged: StageResult | None = None
    notes: list[str] = []
    order = list(prompt_order)
    alpha: float | None = None
    excluded = sorted({r.prompt for r in rows if r.expected_fail} | set(leave_out))
    if plan is not None and plan.staged:
        stages_run = max((plan.stage_of(r.prompt) for r in rows), default=0)
        staged = analyse(plan, rows, stages_run=stages_run, excluded=excluded, metric=metric)
        if staged is not None and staged.sequential.looks:
            # The bounds shown are the last look's: at its nominal level, on its prompts.
            order, alpha = list(staged.prompts_used), staged.nominal_alpha
            notes.append(stage_note(staged, gate.alpha))
            if not alpha:  # a look too small to reach its level decides nothing
                alpha = None
                notes.append(
                    f"look {staged.sequential.looks[-1].look} has too few prompts to reach its "
                    f"level: it cannot stop a config, and the bounds shown are at the overall "
                    f"α = {gate.alpha:g}, for information"
                )
    result, comparisons, excluded = config_gate(
        rows,
        gate,
        prompt_order=[p for p in order if p not in leave_out],
        alpha=alpha,
        metric=metric,
    )
    left_out = sorted(set(excluded) | set(leave_out))
    expected = planned_prompts(plan, rows, prompt_order, left_out, staged)
    have = set(paired_scores(rows, expected, metric)[0])
    missing = tuple(p for p in expected if p not in have)
    if missing:
        used = result.n_prompts if result is not None else 0
        notes.append(
            f"no usable pair (generation, scoring or reference failed) for "
            f"{', '.join(missing)}: the gate used {used} of {len(expected)} prompts"
        )
    decision = gate_decision(result, staged, stopped_early=stopped_early)
    if result is None:
        notes.append("INCOMPLETE: no candidate case has a usable pair with its reference")
    elif stopped_early:
        notes.append(f"INCOMPLETE: the run stopped early ({stopped_early}); no verdict is final")
    elif staged is not None and staged.decision is None:
        notes.append(
            f"INCOMPLETE: undecided after stage {staged.stages_run} of {staged.n_stages}, and "
            "the later stages did not run"
        )
    return CandidateGate(
        result=result,
        comparisons=comparisons,
        excluded=tuple(excluded),
        staged=staged,
        decision=decision,
        verdict=NO_DATA
        if result is None
        else stats.LEGACY_VERDICT.get(decision, stats.INCONCLUSIVE),
        missing=missing,
        planned=len(expected),
        notes=tuple(notes),
    )


def planned_prompts(
    plan: SuitePlan | None,
    rows: Sequence[CaseRecord],
    prompt_order: Sequence[str],
    excluded: Sequence[str],
    staged: StageResult | None,
) -> list[str]:
    """The prompts this config's gate should have had: the plan's (up to the stages that ran,
    or to the look that decided it), else every prompt the config has a case of."""
    if plan is not None and plan.gated_prompts:
        last = (staged.decided_stage or staged.stages_run) if staged is not None else None
        stages = plan.stage_prompts[:last] if last else plan.stage_prompts
        wanted = [p for prompts in stages for p in prompts]
    else:
        present = {r.prompt for r in rows}
        wanted = [p for p in prompt_order if p in present]
    return [p for p in wanted if p not in excluded]


def stage_note(staged: StageResult, alpha: float) -> str:
    seq = staged.sequential
    look = seq.looks[-1]
    where = (
        f"decided at stage {staged.decided_stage} of {staged.n_stages}"
        if staged.decided_stage
        else f"undecided after stage {staged.stages_run} of {staged.n_stages}"
    )
    saved = (
        f"; {staged.generations_saved} candidate generations saved"
        if staged.generations_saved
        else ""
    )
    return (
        f"sequential design: {where} ({look.n_prompts} prompts, look {look.look} of "
        f"{len(seq.design.z_bounds)}); the bounds shown are that look's, at its nominal "
        f"one-sided level {look.nominal_alpha:.4g} (overall α = {alpha:g}){saved}"
    )


def generations_saved(plan: SuitePlan | None, configs: Sequence[ConfigSummary]) -> int:
    """Generations the stages saved: each decided candidate's, and the reference's for the
    stages no candidate went on to."""
    if plan is None or not plan.staged:
        return 0
    saved = sum(c.stages.generations_saved for c in configs if c.stages is not None)
    gated = [c for c in configs if not c.is_reference and c.key in plan.candidates]
    if gated and all(c.stages is not None and c.stages.decided_stage for c in gated):
        last = max(c.stages.decided_stage or 0 for c in gated if c.stages is not None)
        later = sum(len(p) for p in plan.stage_prompts[last:]) * plan.seeds
        reference = next((c for c in configs if c.is_reference), None)
        made = reference.n_cases if reference is not None else 0
        # the reference's later-stage cases that were really not generated (xdist runs them all)
        saved += min(later, max(len(plan.gated_prompts) * plan.seeds - made, 0))
    return saved


def further_look_notes(
    by_config: Mapping[str, Sequence[CaseRecord]],
    reference: str,
    *,
    earlier: Mapping[str, EarlierLook] | None = None,
    prompts_now: Collection[str] = (),
) -> list[str]:
    """A further look, exactly: an earlier run showed a verdict for a candidate config on
    prompts P (``earlier``, from ``look_ledger``), the suite's gated prompts now
    (``prompts_now``) are a strict superset of P, and this run reuses that run's images
    (records of P served from the plugin cache). Then the verdict is a further look at the same
    data, and its one-sided error is above alpha. No ledger entry: no note."""
    notes = []
    now = frozenset(prompts_now)
    for key, rows in by_config.items():
        before = (earlier or {}).get(key)
        if key == reference or before is None or not rows:
            continue
        reused = {r.prompt for r in rows if r.cached == "plugin"} & before.prompts
        gained = now - before.prompts
        if not (reused and gained and before.prompts <= now):
            continue
        label = rows[0].config_label
        word = stats.DECISION_LABELS.get(before.decision, before.decision or "a verdict")
        notes.append(
            f"{label}: run {before.run_id or '(earlier)'} showed {word} on "
            f"{len(before.prompts)} prompts; the suite has gained {len(gained)} prompts since "
            f"({', '.join(sorted(gained)[:4])}{', …' if len(gained) > 4 else ''}) and this run "
            f"reuses that run's images of {len(reused)} of them: look {before.looks + 1} at the "
            "same data, so its one-sided error is above α (optional stopping). Declare added "
            "prompts as a later stage before seeing a verdict instead (docs/gate.md)"
        )
    return notes


def shown_looks(suite: SuiteSummary) -> dict[str, tuple[str, frozenset[str]]]:
    """{config: (decision, the suite's gated prompts)} for each candidate config whose decision
    the run showed (not INCOMPLETE): what ``look_ledger.record_looks`` keeps for the next run."""
    if suite.plan is None:
        return {}
    prompts = frozenset(suite.plan.gated_prompts)
    return {
        c.key: (c.decision, prompts)
        for c in suite.configs
        if not c.is_reference and c.decision not in (stats.INCOMPLETE, NO_DATA)
    }


def gate_metric_choices(metrics: Sequence[MetricInfo]) -> str:
    """The run's metrics a gate can run on (those of an image against its prompt)."""
    names = [m.name for m in metrics if not m.reference_based]
    return ", ".join(names) if names else "clipscore, text_accuracy, a registered one"


def exit_decision(
    suites: Sequence[SuiteSummary],
    settings: Settings,
    metrics: Sequence[MetricInfo] = (),
    *,
    stopped_early: str = "",
) -> ExitDecision:
    """``stats.gate_exit`` over every candidate's decision: only NON-INFERIOR passes. Also
    fails on per-prompt flags when asked. Shown, not enforced, in ADVISORY mode and with random
    weights (no quality measurement)."""
    decisions: dict[str, str] = {}
    flagged = []
    for suite in suites:
        for config in suite.configs:
            if config.is_reference:
                continue
            name = f"{suite.name}/{config.label}" if len(suites) > 1 else config.label
            decisions[name] = config.decision
            if settings.per_prompt_gate and config.flagged_prompts:
                flagged.append(f"{name}: {', '.join(config.flagged_prompts)}")
    ruling = stats.gate_exit(decisions)
    reasons = [ruling.reason] if decisions and ruling.reason else []
    known = {m.name: m for m in metrics}
    unmeasured = []
    for suite in suites:
        info = known.get(suite.gate_metric)
        if suite.gate_metric != CLIPSCORE.name and (info is None or info.reference_based):
            why = (
                "was not measured in this run"
                if info is None
                else "compares with the reference image"
            )
            unmeasured.append(
                f"suite {suite.name}: gate metric {suite.gate_metric!r} {why}; name a metric "
                f"of the image against its prompt ({gate_metric_choices(metrics)})"
            )
    for suite in suites:  # further gated metrics ([gate.metrics.<name>]) the run lacks
        for name in sorted(
            {n for c in suite.configs for n, g in c.metric_gates.items() if g.gate is None}
            - {suite.gate_metric}
        ):
            unmeasured.append(
                f"suite {suite.name}: gated metric {name!r} gave no gate in this run (not "
                f"measured, or not a metric of the image against its prompt: "
                f"{gate_metric_choices(metrics)})"
            )
    reasons = unmeasured + reasons
    if stopped_early:
        reasons.insert(0, f"the run stopped early ({stopped_early}): INCOMPLETE")
    if flagged:
        reasons.append(f"per-prompt drops flagged ({'; '.join(flagged)})")
    ran = bool(decisions)

    def having(*wanted: str) -> tuple[str, ...]:
        return tuple(name for name, d in decisions.items() if d in wanted)

    return ExitDecision(
        gate_ran=ran,
        gate_applied=ran and not settings.random_weights and not settings.advisory,
        gate_passed=ran
        and ruling.gate_passed
        and not unmeasured
        and not flagged
        and not stopped_early,
        failed_configs=having(stats.INFERIOR),
        inconclusive_configs=having(stats.INCONCLUSIVE, stats.INSUFFICIENT),
        flagged=tuple(flagged),
        reason="; ".join(reasons),
        advisory=settings.advisory,
        incomplete_configs=having(stats.INCOMPLETE),
        stopped_early=stopped_early,
        decisions=decisions,
    )
