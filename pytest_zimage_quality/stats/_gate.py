"""The per-config gate: paired non-inferiority of a candidate config's CLIPScore.

The prompt is the unit: each prompt's per-seed differences (candidate - reference) are averaged
into one d_p, and the verdict comes from monotone one-sided (1 - alpha) confidence bounds of the
mean of the d_p (``_monotone``) through ``decide``. Power is planned from a variance prior
(``_power``) and never grades the verdict. The Wilcoxon test and the bootstrap ride along.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from ._common import ScoreTable, check_alpha, check_margin, is_constant, pair, to_dict
from ._companions import bootstrap_lower, wilcoxon
from ._monotone import critical_value, min_prompts, monotone_bounds, monotone_p_value, monotone_t
from ._monotone import t_bounds as classical_t_bounds
from ._power import DEFAULT_PRIOR, PowerPlan, VariancePrior, observed_mdd, plan_power
from ._verdicts import (
    INCONCLUSIVE,
    INFERIOR,
    INSUFFICIENT,
    LEGACY_VERDICT,
    NON_INFERIOR,
    Decision,
    Verdict,
)

__all__ = ["GateResult", "noninferiority_gate"]


@dataclass(frozen=True)
class GateResult:
    """One candidate config's gate. Scores are CLIPScores (raw cosine); d_p = prompt p's mean
    of (candidate - reference) over its seeds.

    Verdict (``decision``): NON-INFERIOR when ``lower_bound`` > -margin, INFERIOR when
    ``upper_bound`` < -margin, INCONCLUSIVE otherwise; INSUFFICIENT DATA with fewer prompts than
    a monotone level-alpha verdict needs (``min_prompts``; 5 at alpha 0.05), or zero spread with
    fewer than 3. ``lower_bound`` / ``upper_bound`` are the monotone one-sided (1 - alpha) bounds
    of the mean of d_p; ``p_value`` is that test's p of H0 mean <= -margin. ``t_lower_bound`` /
    ``t_upper_bound`` / ``t_p_value`` are the classical paired t figures, for reference.
    ``verdict`` and ``passed`` carry the decision under the schema-1 names ("pass" = NON-INFERIOR,
    "fail" = INFERIOR).

    Power is planned (``plan``, from ``prior``, never from this run's data): ``power``,
    ``min_detectable_drop``, ``prompts_needed``, ``seeds_needed``, ``adequately_powered`` and
    ``sd_planning`` repeat the plan's figures for this run's size. ``observed_mdd`` is the
    margin this run's observed spread would clear with 80% probability: information only.

    Companions (never change the verdict): ``wilcoxon_*`` (signed-rank test of d_p + margin,
    about the pseudo-median), ``bootstrap_lower`` (prompt-cluster BCa bound of the mean).
    """

    config: str | None
    reference: str | None
    n_prompts: int
    n_pairs: int
    seeds_per_prompt: tuple[int, int]
    prompts: tuple[str, ...]
    prompt_diffs: tuple[float, ...]
    mean_diff: float
    sd_diff: float | None
    se_diff: float | None
    df: int | None
    margin: float
    alpha: float
    min_prompts: int
    critical_value: float | None
    lower_bound: float | None
    upper_bound: float | None
    p_value: float | None
    t_statistic: float | None
    t_lower_bound: float | None
    t_upper_bound: float | None
    t_p_value: float | None
    wilcoxon_statistic: float | None
    wilcoxon_p: float | None
    wilcoxon_can_reject: bool
    bootstrap_lower: float | None
    bootstrap_method: str | None
    n_resamples: int
    sd_within: float | None
    sd_between: float | None
    observed_mdd: float | None
    plan: PowerPlan
    target_power: float
    sd_planning: float
    power: float
    min_detectable_drop: float | None
    prompts_needed: int | None
    seeds_needed: int | None
    adequately_powered: bool
    decision: Decision
    verdict: Verdict
    passed: bool
    zero_variance: bool
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def _companion_notes(
    d: np.ndarray[Any, np.dtype[np.float64]],
    margin: float,
    alpha: float,
    passed: bool,
    n_resamples: int,
    random_state: Any,
    zero_variance: bool,
) -> tuple[dict[str, Any], list[str]]:
    n, notes = int(d.size), []
    wil = wilcoxon(d, margin, alpha)
    if wil.pvalue is None:
        notes.append(f"Wilcoxon not computed: {wil.label}")
    elif not wil.can_reject:
        dropped = n - wil.n_eff
        notes.append(
            f"Wilcoxon cannot reach alpha={alpha:g} with {wil.n_eff} prompts"
            + (f" ({dropped} equal to -margin, dropped)" if dropped else "")
            + f": its smallest one-sided p is 1/2^{wil.n_eff} = {0.5**wil.n_eff:.4g}"
        )
    elif (wil.pvalue < alpha) != passed:
        notes.append(
            f"disagreement: the gate {'shows' if passed else 'does not show'} non-inferiority "
            f"of the mean, but the Wilcoxon signed-rank test ({wil.label}, p = {wil.pvalue:.4g}) "
            f"{'does not reject' if passed else 'rejects'} a drop of {margin:g} in the "
            "pseudo-median (the typical prompt, not the mean); look for an outlying prompt"
        )
    boot: float | None = float(np.mean(d)) if zero_variance else None
    method: str | None = "none (zero variance)" if zero_variance else None
    if not zero_variance:
        boot, method, boot_note = bootstrap_lower(d, alpha, n_resamples, random_state)
        if boot_note:
            notes.append(boot_note)
        if n < 5:
            notes.append(f"bootstrap over {n} prompts: too few distinct resamples to mean much")
        if boot is not None and (boot > -margin) != passed:
            notes.append(
                f"disagreement: the prompt bootstrap bound of the mean ({boot:+.4g}) "
                f"{'does not clear' if passed else 'clears'} -{margin:g}; "
                + (
                    "the differences may be skewed or have an outlying prompt"
                    if passed
                    else "at small n the bootstrap interval is too narrow, so the gate stands"
                )
            )
    values = {
        "wilcoxon_statistic": wil.statistic,
        "wilcoxon_p": wil.pvalue,
        "wilcoxon_can_reject": wil.can_reject,
        "bootstrap_lower": boot,
        "bootstrap_method": method,
    }
    return values, notes


def noninferiority_gate(
    reference: ScoreTable,
    candidate: ScoreTable,
    *,
    margin: float,
    alpha: float = 0.05,
    power: float = 0.8,
    prior: VariancePrior | None = None,
    n_resamples: int = 9999,
    random_state: int | np.random.Generator | None = 0,
    config: str | None = None,
    reference_config: str | None = None,
) -> GateResult:
    """Is ``candidate`` non-inferior to ``reference`` on CLIPScore, by at most ``margin``?

    ``reference[p][i]`` and ``candidate[p][i]`` share prompt p and seed i; seed counts may differ
    between prompts. ``prior`` (default ``DEFAULT_PRIOR``) plans the power figures; ``power`` is
    their target. Raises ValueError for mismatched prompts or seeds, non-finite scores or bad
    parameters.
    """
    mg, a = check_margin(margin), check_alpha(alpha)
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)):
        raise ValueError(f"n_resamples must be an integer, got {n_resamples!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")
    data = pair(reference, candidate)
    diffs = data.diffs
    d = np.array([float(np.mean(x)) for x in diffs], dtype=np.float64)
    n, seeds = int(d.size), [int(x.size) for x in diffs]
    mean = float(np.mean(d))
    k_harm = float(len(seeds) / sum(1.0 / k for k in seeds))
    within_df = sum(k - 1 for k in seeds)
    sd_within = (
        math.sqrt(sum(float(np.sum((x - np.mean(x)) ** 2)) for x in diffs) / within_df)
        if within_df > 0
        else None
    )
    plan = plan_power(
        prior or DEFAULT_PRIOR, n, max(1, round(k_harm)), margin=mg, alpha=a, target=power
    )
    notes: list[str] = []
    if min(seeds) != max(seeds):
        notes.append(
            f"seeds per prompt vary ({min(seeds)}-{max(seeds)}): per-prompt means have unequal "
            "precision; every prompt still counts once"
        )
    zero_variance = n >= 2 and is_constant(d)
    sd = float(np.std(d, ddof=1)) if n >= 2 and not zero_variance else (0.0 if n >= 2 else None)
    fewest = max(2, min_prompts(a))
    lower = upper = p_value = t_stat = t_low = t_up = t_p = None
    q: float | None = None
    if n < fewest or (zero_variance and n < 3):
        decision: Decision = INSUFFICIENT
        if n < 2:
            why = "one prompt: the prompt is the unit (its seeds share its difficulty), no test"
        elif zero_variance and n < 3:
            why = f"zero spread across only {n} prompts: no evidence about the spread"
        else:
            why = (
                f"{n} prompts: a monotone verdict at alpha = {a:g} needs at least {fewest} "
                f"(with all n differences on one side, 2^-n = {0.5**n:.3g} >= alpha)"
            )
        notes.insert(0, f"insufficient data: {why}; add prompts")
        if n >= 2 and not zero_variance:
            # The classical t figures, for reference only: they never make a verdict.
            t_low, t_up = classical_t_bounds(d, a)
            res = sps.ttest_1samp(d, popmean=-mg, alternative="greater")
            t_stat, t_p = float(res.statistic), float(res.pvalue)
    else:
        q = critical_value(n, a)
        lower, upper = monotone_bounds(d, a)
        # The same event as decide(lower, upper, mg), read off the statistic itself so that
        # the bisection's last-bit rounding can never decide a verdict.
        stat = float(monotone_t((d + mg)[None, :])[0])
        stat_inferior = float(monotone_t(-(d + mg)[None, :])[0])
        decision = NON_INFERIOR if stat > q else INFERIOR if stat_inferior > q else INCONCLUSIVE
        p_value = monotone_p_value(stat, n)
        if zero_variance:
            notes.insert(0, f"zero variance: all {n} per-prompt differences equal {mean:+.6g}")
        else:
            t_low, t_up = classical_t_bounds(d, a)
            res = sps.ttest_1samp(d, popmean=-mg, alternative="greater")
            t_stat, t_p = float(res.statistic), float(res.pvalue)
    sd_between = (
        math.sqrt(max(sd**2 - sd_within**2 / k_harm, 0.0))
        if sd is not None and sd_within is not None
        else None
    )
    companions: dict[str, Any] = {
        "wilcoxon_statistic": None,
        "wilcoxon_p": None,
        "wilcoxon_can_reject": False,
        "bootstrap_lower": None,
        "bootstrap_method": None,
    }
    if n >= 2:
        companions, more = _companion_notes(
            d, mg, a, decision == NON_INFERIOR, int(n_resamples), random_state, zero_variance
        )
        notes.extend(more)
    notes.extend(f"plan: {note}" for note in plan.notes)
    return GateResult(
        config=config,
        reference=reference_config,
        n_prompts=n,
        n_pairs=int(sum(seeds)),
        seeds_per_prompt=(min(seeds), max(seeds)),
        prompts=data.prompts,
        prompt_diffs=tuple(float(v) for v in d),
        mean_diff=mean,
        sd_diff=sd,
        se_diff=None if sd is None else sd / math.sqrt(n),
        df=n - 1 if n >= 2 else None,
        margin=mg,
        alpha=a,
        min_prompts=fewest,
        critical_value=q,
        lower_bound=lower,
        upper_bound=upper,
        p_value=p_value,
        t_statistic=t_stat,
        t_lower_bound=t_low,
        t_upper_bound=t_up,
        t_p_value=t_p,
        **companions,
        n_resamples=int(n_resamples),
        sd_within=sd_within,
        sd_between=sd_between,
        observed_mdd=observed_mdd(sd, n, a, power) if n >= 2 else None,
        plan=plan,
        target_power=plan.target,
        sd_planning=plan.sd_prompt,
        power=plan.power,
        min_detectable_drop=plan.min_detectable_drop,
        prompts_needed=plan.prompts_needed,
        seeds_needed=plan.seeds_needed,
        adequately_powered=plan.adequately_powered,
        decision=decision,
        verdict=LEGACY_VERDICT[decision],
        passed=decision == NON_INFERIOR,
        zero_variance=zero_variance,
        notes=tuple(notes),
    )
