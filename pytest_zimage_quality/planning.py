"""Before the run: what each suite can show (power from a variance prior), its stages, its band.

Power is planned, never graded (docs/statistics.md): before any image is generated the run
states each suite's power at the margin δ and its minimum detectable drop, from a variance
prior of the paired CLIPScore difference. The prior comes from ``--zimage-prior`` (a previous
run's summary.json), else the suite file's ``[suite.prior]``, else ``stats.DEFAULT_PRIOR``
(derived from the study). The per-case band (``checks.case_band``) needs the number of
candidate cases in the run, which is known here too. Pure apart from reading the prior file.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import stats
from .checks import DEFAULT_FAMILY_ALPHA, CaseBand, case_band
from .errors import ZImageError
from .metric_gates import (
    GatedMetric,
    MetricGateSpec,
    bonferroni_alpha,
    further_gates,
    planned_further_gates,
)

if TYPE_CHECKING:
    from .settings import Settings
    from .suite import Case, Suite

__all__ = ["SuitePlan", "load_prior", "plan_suites", "prior_for"]


def _pool(priors: Sequence[stats.VariancePrior], source: str) -> stats.VariancePrior:
    """Candidates' spreads pooled by their mean variance (as the study default pools them)."""
    between = math.sqrt(sum(p.sd_between**2 for p in priors) / len(priors))
    within = math.sqrt(sum(p.sd_within**2 for p in priors) / len(priors))
    return stats.VariancePrior(sd_between=between, sd_within=within, source=source)


def load_prior(path: Path) -> dict[str | None, stats.VariancePrior]:
    """Variance priors from a previous run's summary.json: one per suite name, and under
    ``None`` all of its candidate configs pooled (for suites it does not name).

    Each candidate's gate figures (SD of its per-prompt mean differences, pooled within-prompt
    SD, seeds per prompt) give a prior by the method of moments
    (``VariancePrior.from_observed``). Raises ZImageError naming the file and the fix.
    """
    hint = "pass the summary.json of an earlier run of this suite (its report directory has it)"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ZImageError(
            f"--zimage-prior: cannot read {path}: {exc.strerror or exc}", hint=hint
        ) from exc
    except ValueError as exc:
        raise ZImageError(f"--zimage-prior: {path} is not JSON: {exc}", hint=hint) from exc
    run = str(data.get("run_id", "?")) if isinstance(data, dict) else "?"
    found: dict[str | None, list[stats.VariancePrior]] = {}
    for suite in data.get("suites", []) if isinstance(data, dict) else []:
        for config in suite.get("configs", []) if isinstance(suite, dict) else []:
            gate = config.get("gate") if isinstance(config, dict) else None
            if not isinstance(gate, dict) or not _spread(gate.get("sd_diff")):
                continue
            seeds = gate.get("seeds_per_prompt") or [1, 1]
            raw_within: Any = gate.get("sd_within")
            within = float(raw_within) if _spread(raw_within) else None
            try:
                prior = stats.VariancePrior.from_observed(
                    float(gate["sd_diff"]),
                    within,
                    max(1.0, float(sum(seeds)) / 2),
                    source=f"run {run}",
                )
            except (TypeError, ValueError):
                continue
            found.setdefault(str(suite.get("name")), []).append(prior)
            found.setdefault(None, []).append(prior)
    if not found:
        raise ZImageError(
            f"--zimage-prior: {path} holds no candidate config with an observed spread "
            "(no gate with at least 2 prompts)",
            hint=hint,
        )
    return {name: _pool(priors, f"{path} (run {run})") for name, priors in found.items()}


def _spread(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def prior_for(
    suite: Suite, from_file: Mapping[str | None, stats.VariancePrior] | None
) -> stats.VariancePrior:
    """The variance prior that plans ``suite``: the prior file, the suite file, the default."""
    if from_file:
        return from_file.get(suite.name) or from_file[None]
    if suite.prior is not None:
        between, within = suite.prior
        return stats.VariancePrior(between, within, source="suite file [suite.prior]")
    return stats.DEFAULT_PRIOR


@dataclass(frozen=True)
class SuitePlan:
    """One suite's plan for this run's selection of cases."""

    suite: str
    margin: float
    alpha: float
    stage_prompts: tuple[tuple[str, ...], ...]  # selected prompts per stage (empty stages out)
    stage_numbers: tuple[int, ...]  # the suite's stage number of each entry above
    n_stages_declared: int
    seeds: int
    candidates: tuple[str, ...]  # candidate config keys selected
    n_candidate_cases: int  # this suite's; the band counts the whole run's
    prior: stats.VariancePrior
    power: stats.PowerPlan | None  # None: no candidate config or fewer than 1 gated prompt
    band: CaseBand
    #: further gated metrics ([gate.metrics.<name>]): each read through the stages at ``alpha``
    further: tuple[GatedMetric, ...] = ()
    #: a staged suite's planned power: the sequential design's chance to end NON-INFERIOR at no
    #: true drop under the prior (``stats.sequential_power``); None without stages
    sequential_power: float | None = None
    #: its minimum detectable drop: the margin it clears with the target probability at no true
    #: drop (``stats.sequential_mdd_effect`` times the prior's per-prompt SD)
    sequential_mdd: float | None = None

    @property
    def staged(self) -> bool:
        return len(self.stage_prompts) > 1

    @property
    def looks(self) -> tuple[int, ...]:
        """Cumulative planned prompts at each stage's look."""
        counts, total = [], 0
        for prompts in self.stage_prompts:
            total += len(prompts)
            counts.append(total)
        return tuple(counts)

    @property
    def gated_prompts(self) -> tuple[str, ...]:
        return tuple(p for stage in self.stage_prompts for p in stage)

    def stage_of(self, prompt: str) -> int:
        """1-based index of the look ``prompt`` belongs to (0: not selected)."""
        for index, prompts in enumerate(self.stage_prompts, start=1):
            if prompt in prompts:
                return index
        return 0

    def lines(self) -> list[str]:
        """What the run says about this suite before generating anything."""
        head = f"zimage plan: suite {self.suite}: "
        if self.power is None:
            return [head + "no candidate config selected: no gate to plan"]
        p, prior = self.power, self.prior
        stages = ""
        if self.staged:
            looks = ", ".join(map(str, self.looks))
            stages = f" in {len(self.stage_prompts)} stages (looks at {looks} prompts)"
        mdd = _drop_text(p.min_detectable_drop)
        power = f"{p.power:.2f}"
        if self.sequential_power is not None:
            power = (
                f"{self.sequential_power:.3f} (the sequential design's: its chance to end "
                f"NON-INFERIOR with no true drop; one look at all {p.n_prompts} prompts: "
                f"{p.power:.3f})"
            )
            mdd = f"{_drop_text(self.sequential_mdd)} (the design's; one look: {mdd})"
        lines = [
            head
            + f"{p.n_prompts} prompts × {p.n_seeds} seeds per candidate{stages}; planned power "
            f"at δ = {self.margin:g}: {power}, minimum detectable drop {mdd} "
            f"(prior {prior.source}: sd_between {prior.sd_between:.4g}, sd_within "
            f"{prior.sd_within:.4g}; α = {self.alpha:g})",
            f"zimage plan: per-case {self.band.describe()} over {self.band.n_cases} candidate cases",
        ]
        lines.extend(
            f"zimage plan: per-case {g.metric} {g.band.describe()} over {g.band.n_cases} "
            "candidate cases ([gate.metrics] band)"
            for g in self.further
            if g.band is not None
        )
        if self.staged:
            lines.append(self.design_line())
        lines.extend(f"zimage plan: WARNING {note}" for note in self.warnings())
        return lines

    def design_line(self) -> str:
        """Each look's nominal level, and which looks cannot stop a config (2^-n too large)."""
        design = stats.calibrated_design(self.looks, self.alpha)
        looks = "; ".join(
            f"{n} prompts: {'cannot stop a config' if math.isinf(q) else f'α {a:.4f}'}"
            for n, q, a in zip(
                self.looks, design.critical_values, design.nominal_alpha, strict=True
            )
        )
        return (
            f"zimage plan: sequential design ({design.spending} α-spending, calibrated; "
            f"docs/statistics.md): {looks}"
        )

    def warnings(self) -> list[str]:
        """Below the target power: what would reach it (never fails the run)."""
        if self.power is None:
            return []
        notes = [] if self.power.adequately_powered else list(self.power.notes)
        target = self.power.target
        if self.sequential_power is not None and self.sequential_power < target:
            notes.append(
                f"the sequential design's planned power {self.sequential_power:.3f} < {target:g}"
                " (its early looks spend α the last look no longer has): add prompts to the "
                "later stages"
            )
        return [f"suite {self.suite}: {'; '.join(notes)}"] if notes else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": [list(prompts) for prompts in self.stage_prompts],
            "seeds": self.seeds,
            "prior": self.prior.to_dict(),
            "power": None if self.power is None else self.power.to_dict(),
            "sequential_power": self.sequential_power,
            "sequential_mdd": self.sequential_mdd,
            "band": self.band.to_dict(),
        }


def _further_band(
    spec: MetricGateSpec, cases: Sequence[Case], family_alpha: float
) -> CaseBand | None:
    """A further gated metric's per-case band over the candidate cases it checks: fixed (its
    number), or scaled like CLIPScore's in the metric's units (no floor, its own ceiling)."""
    n = max(sum(1 for c in cases if not c.is_reference and spec.selects(c.prompt)), 1)
    if spec.band_sd is not None:
        ceiling = spec.band_ceiling if spec.band_ceiling is not None else math.inf
        return case_band(
            n, tolerance=0.0, sd=spec.band_sd, family_alpha=family_alpha, ceiling=ceiling
        )
    if spec.band is not None:
        return case_band(n, mode="fixed", tolerance=spec.band)
    return None


def _drop_text(drop: float | None) -> str:
    return "—" if drop is None else f"{drop:.4f}"


def _sequential_plan(
    stages: Sequence[Sequence[str]],
    prior: stats.VariancePrior,
    seeds: int,
    margin: float,
    alpha: float,
) -> tuple[float | None, float | None]:
    """The staged design's planned power at no true drop and its minimum detectable drop
    (None, None without stages)."""
    if len(stages) < 2:
        return None, None
    looks = tuple(itertools.accumulate(len(s) for s in stages))
    sd = prior.sd_prompt(seeds)
    effect = margin / sd if sd > 0 else 1e6
    mdd_effect = stats.sequential_mdd_effect(looks, alpha)
    mdd = None if mdd_effect is None else mdd_effect * sd
    return stats.sequential_power(looks, alpha, round(effect, 9)), mdd


def plan_suites(
    selected: Iterable[tuple[Suite, Case]],
    settings: Settings,
    *,
    prior_file: Mapping[str | None, stats.VariancePrior] | None = None,
) -> dict[str, SuitePlan]:
    """The plan of every suite with selected cases; the band counts every candidate case of
    the run (all suites, configs and stages), so its run-level false alarm stays bounded."""
    by_suite: dict[str, tuple[Suite, list[Case]]] = {}
    for suite, case in selected:
        by_suite.setdefault(suite.name, (suite, []))[1].append(case)
    m = sum(1 for _, cases in by_suite.values() for case in cases if not case.is_reference)
    # The run's per-case false-alarm budget is shared among its scaled bands (Bonferroni):
    # CLIPScore's and each further gated metric's band = "scaled" (docs/metrics.md).
    scaled = sum(
        spec.scaled
        for suite, _ in by_suite.values()
        for spec in further_gates(suite.metric_gates, settings.gate_metric_for(suite))
    )
    family = DEFAULT_FAMILY_ALPHA / max((settings.band == "scaled") + scaled, 1)
    plans = {}
    for name, (suite, cases) in by_suite.items():
        gate = settings.gate_for(suite)
        # Each of the suite's k gated metrics is tested at alpha / k (metric_gates.py).
        further = planned_further_gates(
            suite.metric_gates, settings.gate_metric_for(suite), suite.prompts
        )
        gate = dataclasses.replace(gate, alpha=bonferroni_alpha(gate.alpha, 1 + len(further)))
        band = case_band(
            max(m, 1),
            mode=settings.band,
            tolerance=gate.tolerance,
            sd=settings.band_sd,
            family_alpha=family,
        )
        specs = {spec.metric: spec for spec in suite.metric_gates}
        further = tuple(
            dataclasses.replace(g, band=_further_band(specs[g.metric], cases, family))
            for g in further
        )
        candidates = tuple(dict.fromkeys(c.config.key for c in cases if not c.is_reference))
        # Prompts every candidate is gated on: expected-fail prompts are left out of the gate.
        gated = {
            c.prompt.key
            for c in cases
            if not c.is_reference and (c.expected_fail is None or c.expected_fail.config)
        }
        stage_prompts, numbers = [], []
        for stage in suite.stages:
            prompts = tuple(p.key for p in suite.prompts if p.stage == stage and p.key in gated)
            if prompts:
                stage_prompts.append(prompts)
                numbers.append(stage)
        seeds = len({c.seed for c in cases}) or 1
        prior = prior_for(suite, prior_file)
        n = sum(len(s) for s in stage_prompts)
        power = (
            stats.plan_power(prior, n, seeds, margin=gate.margin, alpha=gate.alpha)
            if candidates and n
            else None
        )
        sequential_power, sequential_mdd = (
            _sequential_plan(stage_prompts, prior, seeds, gate.margin, gate.alpha)
            if power is not None
            else (None, None)
        )
        plans[name] = SuitePlan(
            suite=name,
            margin=gate.margin,
            alpha=gate.alpha,
            stage_prompts=tuple(stage_prompts),
            stage_numbers=tuple(numbers),
            n_stages_declared=len(suite.stages),
            seeds=seeds,
            candidates=candidates,
            n_candidate_cases=sum(1 for c in cases if not c.is_reference),
            prior=prior,
            power=power,
            band=band,
            further=further,
            sequential_power=sequential_power,
            sequential_mdd=sequential_mdd,
        )
    return plans
