"""Sequential stages: each candidate config is tested after every stage, and stops once decided.

A suite may split its prompts into stages (``stage = 2`` on a prompt). The run generates stage 1
for every config; after it, each candidate is tested against a group-sequential boundary
(``stats.sequential_gate``: Lan-DeMets linear alpha-spending with calibrated T* boundaries),
which keeps the overall one-sided error at alpha across the looks. A config decided NON-INFERIOR or INFERIOR
stops: its later-stage cases are never released to the engine. The reference's later-stage
cases are released while any candidate still needs them.

``analyse`` is the one reading of a config's records as looks, used by ``StageHold`` during the
run and by the summary afterwards, so the two cannot disagree. With further gated metrics
(``[gate.metrics.<name>]``) each gated metric is read so, with its own margin and prompts, at
alpha / k; a config stops once every gated metric is decided, or any one is INFERIOR
(``read_config``). A stage's look counts the prompts
that have a usable pair in it (a prompt lost to a failed generation shifts the information
fractions); stages not yet generated count as planned. No pytest, no engine.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import stats
from .metric_gates import GatedMetric, combine_decisions
from .metrics import REFERENCE_FREE, MetricInfo

if TYPE_CHECKING:
    from .planning import SuitePlan
    from .records import CaseRecord
    from .suite import Case

__all__ = [
    "CLIPSCORE",
    "ConfigReading",
    "StageHold",
    "StageResult",
    "analyse",
    "pair_of",
    "paired_scores",
    "read_config",
]

#: The default gate metric (a suite's ``gate_metric`` names another).
CLIPSCORE = MetricInfo("clipscore", "CLIPScore", REFERENCE_FREE, True)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def pair_of(record: CaseRecord, metric: MetricInfo = CLIPSCORE) -> tuple[float, float] | None:
    """A candidate record's (reference, candidate) values of ``metric``, both finite, a
    lower-is-better metric negated so that a drop is always the bad direction; else None."""
    value, reference = record.metric(metric.name), record.reference_metric(metric.name)
    if metric.name == CLIPSCORE.name and (value is None or reference is None):
        value, reference = record.clipscore, record.reference_clipscore  # older records
    if record.is_reference or not (_finite(value) and _finite(reference)):
        return None
    assert value is not None
    assert reference is not None
    sign = 1.0 if metric.higher_is_better else -1.0
    return sign * reference, sign * value


def paired_scores(
    records: Iterable[CaseRecord], prompts: Sequence[str], metric: MetricInfo = CLIPSCORE
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Reference and candidate values of ``metric`` by prompt (seeds aligned), in ``prompts``
    order; prompts without a usable pair (missing, NaN, infinite) are absent."""
    ref: dict[str, list[float]] = defaultdict(list)
    cand: dict[str, list[float]] = defaultdict(list)
    wanted = set(prompts)
    for record in sorted(records, key=lambda r: r.seed):
        pair = pair_of(record, metric) if record.prompt in wanted else None
        if pair is not None:
            ref[record.prompt].append(pair[0])
            cand[record.prompt].append(pair[1])
    order = [p for p in prompts if p in ref]
    return {p: ref[p] for p in order}, {p: cand[p] for p in order}


@dataclass(frozen=True)
class StageResult:
    """A candidate config read as the looks of its suite's sequential design."""

    sequential: stats.SequentialResult
    n_stages: int
    stages_run: int  # stages the config had cases in
    look_stage: tuple[int, ...]  # the stage (1-based) each look of ``sequential`` ends
    decided_stage: int | None  # the stage whose look decided the config
    prompts_used: tuple[str, ...]  # the prompts of the looks taken, in stage order
    generations_saved: int  # candidate cases of this config not generated

    @property
    def decision(self) -> str | None:
        return self.sequential.decision

    @property
    def nominal_alpha(self) -> float | None:
        """The one-sided level of the last look taken (the level its bounds are shown at)."""
        looks = self.sequential.looks
        return looks[-1].nominal_alpha if looks else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_stages": self.n_stages,
            "stages_run": self.stages_run,
            "decided_stage": self.decided_stage,
            "prompts_used": len(self.prompts_used),
            "generations_saved": self.generations_saved,
            "looks": [
                {**look.to_dict(), "stage": self.look_stage[i]}
                for i, look in enumerate(self.sequential.looks)
            ],
            "z_bounds": list(self.sequential.design.z_bounds),
            "nominal_alpha": list(self.sequential.design.nominal_alpha),
        }


def analyse(
    plan: SuitePlan,
    records: Iterable[CaseRecord],
    *,
    stages_run: int,
    excluded: Iterable[str] = (),
    metric: MetricInfo = CLIPSCORE,
) -> StageResult | None:
    """The sequential reading of one candidate config's records after ``stages_run`` stages.

    ``excluded``: prompts left out of the gate (expected to fail). None when no stage holds a
    usable prompt.
    """
    leave_out = set(excluded)
    rows = list(records)
    ref, cand = paired_scores(rows, [p for p in plan.gated_prompts if p not in leave_out], metric)
    diffs: list[float] = []
    used: list[str] = []
    counts: list[int] = []
    for index, prompts in enumerate(plan.stage_prompts, start=1):
        wanted = [p for p in prompts if p not in leave_out]
        if index <= stages_run:
            have = [p for p in wanted if p in ref]
            diffs.extend(
                sum(c - r for c, r in zip(cand[p], ref[p], strict=True)) / len(ref[p]) for p in have
            )
            used.extend(have)
            counts.append(len(have))
        else:
            counts.append(len(wanted))
    looks, look_stage, total = [], [], 0
    for stage, count in enumerate(counts, start=1):
        total += count
        if count:  # a stage with no usable prompt adds no information: no look of its own
            looks.append(total)
            look_stage.append(stage)
    if not looks or not diffs:
        return None
    result = stats.sequential_gate(diffs, looks, margin=plan.margin, alpha=plan.alpha)
    taken = len(result.looks)
    decided = look_stage[result.stopped_at - 1] if result.stopped_at else None
    # Saved = the later stages' planned cases that were really not generated: under xdist (or
    # any order the hold cannot follow) every stage runs, and the reading is the same, saving 0.
    later = {p for prompts in plan.stage_prompts[decided or len(counts) :] for p in prompts}
    later -= leave_out
    present = {(r.prompt, r.seed) for r in rows if r.prompt in later}
    saved = max(len(later) * plan.seeds - len(present), 0) if decided else 0
    return StageResult(
        sequential=result,
        n_stages=len(plan.stage_prompts),
        stages_run=stages_run,
        look_stage=tuple(look_stage),
        decided_stage=decided,
        prompts_used=tuple(used[: result.prompts_used]) if taken else (),
        generations_saved=saved,
    )


@dataclass(frozen=True)
class ConfigReading:
    """A candidate config's readings after some stages, one per gated metric (the gate metric
    first), and whether they stop it: ``decision`` None means go on to the next stage."""

    readings: tuple[tuple[str, StageResult | None], ...]
    decision: str | None
    decided_stage: int | None

    def describe(self) -> str:
        """Each gated metric's word, for the hold's skip reason."""
        words = []
        for name, result in self.readings:
            decision = result.decision if result is not None else None
            word = stats.DECISION_LABELS.get(decision, decision) if decision else "undecided"
            words.append(f"{name} {word if result is not None else 'gives no reading'}")
        return ", ".join(words)


def read_config(
    plan: SuitePlan,
    records: Iterable[CaseRecord],
    *,
    stages_run: int,
    excluded: Iterable[str] = (),
    metrics: Sequence[tuple[GatedMetric, MetricInfo | None]],
) -> ConfigReading:
    """Whether a candidate config stops after ``stages_run`` stages, every gated metric read by
    ``analyse`` exactly as the summary reads it (its margin, its prompts, alpha / k).

    ``metrics``: each gated metric and how the run measures it (None: not measured, or not a
    gate's kind: it can never decide, the summary names it INCOMPLETE, and it holds nothing
    back). The config stops INFERIOR as soon as one metric is; else once every metric that can
    decide has, with the combined decision (NON-INFERIOR only if every one is).
    """
    rows, leave = list(records), set(excluded)
    readings: list[tuple[str, StageResult | None]] = []
    pending = False
    decided: list[tuple[str, int]] = []
    for gated, info in metrics:
        if info is None or info.reference_based:
            readings.append((gated.metric, None))
            decided.append((stats.INCOMPLETE, 0))
            continue
        out = leave | gated.leave_out
        own = (
            plan if gated.margin == plan.margin else dataclasses.replace(plan, margin=gated.margin)
        )
        result = analyse(own, rows, stages_run=stages_run, excluded=out, metric=info)
        readings.append((gated.metric, result))
        if result is not None and result.decision is not None:
            decided.append((result.decision, result.decided_stage or stages_run))
        elif result is not None or _later_prompts(plan, stages_run, out):
            pending = True  # undecided, or none of its prompts generated yet: go on
        else:
            decided.append((stats.INCOMPLETE, 0))  # no prompt of its own anywhere: never decides
    inferior = [stage for word, stage in decided if word == stats.INFERIOR]
    if inferior:
        return ConfigReading(tuple(readings), stats.INFERIOR, min(inferior))
    if pending or not any(stage for _, stage in decided):
        return ConfigReading(tuple(readings), None, None)
    decision = combine_decisions([word for word, _ in decided])
    return ConfigReading(tuple(readings), decision, max(stage for _, stage in decided))


def _later_prompts(plan: SuitePlan, stages_run: int, excluded: set[str]) -> bool:
    return any(p not in excluded for prompts in plan.stage_prompts[stages_run:] for p in prompts)


class StageHold:
    """Which staged cases may be generated: stage 1 at once, stage k+1 of a config only once
    its looks through stage k left it undecided. Thread-safe; decisions are remembered.

    A decision needs every case of the config (and of the reference) in the stages before: when
    tests run out of stage order (shuffled, or split over xdist workers) a case is released
    rather than held, and the summary still reads the stages afterwards (nothing saved then).
    """

    def __init__(
        self,
        plans: Mapping[str, SuitePlan],
        cases: Iterable[Case],
        *,
        metric_for: Callable[[str], MetricInfo | None] | None = None,
        measured: Callable[[], Sequence[MetricInfo]] | None = None,
    ) -> None:
        """``metric_for(suite)``: the suite's gate metric as the run measures it (asked when a
        decision is due, once the scorers exist); None when the run does not measure it, and
        then nothing is held back. Without it, and without ``use_metric``, CLIPScore.
        ``measured()``: the run's metrics, where a plan's further gated metrics are found (one
        not measured never decides, and holds nothing back)."""
        self._plans = plans
        self._metric_for = metric_for
        self._measured = measured
        self._planned: dict[tuple[str, str, int], list[Case]] = defaultdict(list)
        self._held: dict[tuple[str, str, int], list[Case]] = {}
        self._labels: dict[tuple[str, str], str] = {}
        self._references: dict[str, str] = {}
        self._results: dict[tuple[str, str, int], ConfigReading | None] = {}
        self._metrics: dict[str, MetricInfo] = {}
        self._lock = threading.Lock()
        for case in cases:
            self._planned[(case.suite, case.config.key, self.stage_of(case))].append(case)
            self._labels[(case.suite, case.config.key)] = case.config.label
            self._references[case.suite] = case.reference
        self._held = {key: list(cases) for key, cases in self._planned.items() if key[2] > 1}

    def stage_of(self, case: Case) -> int:
        plan = self._plans.get(case.suite)
        if plan is None or not plan.staged:
            return 1
        return max(plan.stage_of(case.prompt.key), 1)

    def use_metric(self, suite: str, metric: MetricInfo) -> None:
        """Decide ``suite``'s configs on ``metric`` (its gate metric; CLIPScore by default)."""
        self._metrics[suite] = metric

    def _metric(self, suite: str) -> MetricInfo | None:
        if suite not in self._metrics and self._metric_for is not None:
            found = self._metric_for(suite)
            if found is None or found.reference_based:
                return None  # no gate on it in this run: the summary says so; hold nothing
            self._metrics[suite] = found
        return self._metrics.get(suite, CLIPSCORE)

    def first(self) -> list[Case]:
        """The cases to generate from the start (everything of a suite without stages)."""
        return [case for key, cases in self._planned.items() if key[2] <= 1 for case in cases]

    def held(self) -> int:
        """How many cases are held back now."""
        with self._lock:
            return sum(len(cases) for cases in self._held.values())

    def _complete(
        self, suite: str, config: str, stages_run: int, records: Mapping[tuple[str, str], Any]
    ) -> bool:
        configs = (config, self._references.get(suite, config))
        return all(
            case.key in records
            for c in configs
            for stage in range(1, stages_run + 1)
            for case in self._planned.get((suite, c, stage), ())
        )

    def _result(
        self,
        suite: str,
        config: str,
        stages_run: int,
        records: Mapping[tuple[str, str], CaseRecord],
    ) -> tuple[ConfigReading | None, bool]:
        """``config``'s reading after ``stages_run`` stages, and whether it is final (every
        case of those stages has finished). A decision, once made, stays."""
        key = (suite, config, stages_run)
        if key in self._results:
            return self._results[key], True
        earlier = self._results.get((suite, config, stages_run - 1))
        if earlier is not None and earlier.decision is not None:
            self._results[key] = earlier
            return earlier, True
        if not self._complete(suite, config, stages_run, records):
            return None, False
        metric = self._metric(suite)
        if metric is None:
            return None, True
        plan = self._plans[suite]
        known = {m.name: m for m in (self._measured() if self._measured is not None else ())}
        gated: list[tuple[GatedMetric, MetricInfo | None]] = [
            (GatedMetric(metric.name, plan.margin), metric)
        ]
        gated += [(further, known.get(further.metric)) for further in plan.further]
        rows = [r for r in records.values() if r.suite == suite and r.config == config]
        excluded = {r.prompt for r in rows if r.expected_fail}
        result = read_config(plan, rows, stages_run=stages_run, excluded=excluded, metrics=gated)
        self._results[key] = result
        return result, True

    def check(
        self, case: Case, records: Mapping[tuple[str, str], CaseRecord]
    ) -> tuple[str | None, list[Case]]:
        """Before ``case`` runs: why it is not generated (a skip reason), or None and the cases
        of its (config, stage) to release to the engine now (empty once released)."""
        stage = self.stage_of(case)
        if stage <= 1:
            return None, []
        plan = self._plans[case.suite]
        n = len(plan.stage_prompts)
        with self._lock:
            if case.is_reference:
                readings = [
                    self._result(case.suite, config, stage - 1, records)
                    for config in plan.candidates
                ]
                if readings and all(r is not None and r.decision for r, _ in readings):
                    return (
                        f"every candidate config of {case.suite} was decided by stage "
                        f"{stage - 1} of {n}: the reference's stage-{stage} cases are not "
                        "needed (sequential design, docs/gate.md)",
                        [],
                    )
            else:
                result, _ = self._result(case.suite, case.config.key, stage - 1, records)
                if result is not None and result.decision is not None:
                    label = self._labels.get((case.suite, case.config.key), case.config.key)
                    word = stats.DECISION_LABELS.get(result.decision, result.decision)
                    at = f"stage {result.decided_stage} of {n}"
                    said = f"{label} decided {word} at {at}"
                    if len(result.readings) > 1:
                        said = (
                            f"{label} decided {word} at {at} ({result.describe()})"
                            if result.decision == stats.INFERIOR
                            else f"{label}: every gated metric decided by {at} "
                            f"({result.describe()})"
                        )
                    return (
                        f"{said}: its stage-{stage} cases are not generated (sequential "
                        "design, docs/gate.md)",
                        [],
                    )
            return None, self._held.pop((case.suite, case.config.key, stage), [])
