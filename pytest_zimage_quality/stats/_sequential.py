"""Group-sequential stages: decide a config early, keep the one-sided error at alpha overall.

Looking at the data after each stage and stopping when the bound clears is optional stopping:
three looks at level alpha each raise the false pass to about 2 alpha. The design here spends
alpha over the looks with the Lan-DeMets spending function of O'Brien-Fleming type,

    alpha(t) = 2 - 2 Phi(z_{1 - alpha/2} / sqrt(t)),   t = information fraction (prompts so far
                                                            / prompts planned),

so almost nothing is spent early and the last look keeps nearly all of alpha. The z boundaries
c_1..c_K solve P(Z_1 < c_1, ..., Z_{k-1} < c_{k-1}, Z_k >= c_k) = alpha(t_k) - alpha(t_{k-1}) for
the canonical joint normal with corr(Z_i, Z_j) = sqrt(t_i / t_j) (scipy's multivariate normal
CDF). Each look then tests at its nominal level a_k = 1 - Phi(c_k) with the gate's own monotone
statistic on the prompts so far (the "significance level" approach: the t-type statistic is
compared with its own quantile at a_k). Crossing the upper boundary stops the config
NON-INFERIOR; crossing the mirror boundary of the opposite one-sided test stops it INFERIOR
(non-binding: the NON-INFERIOR error is computed as if it never stopped, so stopping only lowers
it). At the last look the ordinary verdict applies at the remaining level a_K.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
from scipy import optimize
from scipy import stats as sps

from ._common import as_vector, check_alpha, check_margin, to_dict
from ._monotone import critical_value, monotone_t
from ._verdicts import INCONCLUSIVE, INFERIOR, INSUFFICIENT, NON_INFERIOR, Decision

__all__ = [
    "Look",
    "SequentialDesign",
    "SequentialResult",
    "obrien_fleming_spending",
    "sequential_design",
    "sequential_gate",
]

_MVN_ABSEPS: Final = 1e-7


def obrien_fleming_spending(t: float, alpha: float) -> float:
    """Cumulative one-sided alpha spent by information fraction t (Lan-DeMets, O'Brien-Fleming)."""
    if t <= 0:
        return 0.0
    return float(2.0 - 2.0 * sps.norm.cdf(sps.norm.ppf(1.0 - alpha / 2.0) / math.sqrt(min(t, 1.0))))


@dataclass(frozen=True)
class SequentialDesign:
    """Boundaries of a K-look design at the given information fractions (the last is 1)."""

    information: tuple[float, ...]
    alpha: float
    spent: tuple[float, ...]
    z_bounds: tuple[float, ...]
    nominal_alpha: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def _no_cross(bounds: Sequence[float], information: Sequence[float]) -> float:
    """P(Z_1 < c_1, ..., Z_k < c_k) for the canonical joint normal at these fractions."""
    k = len(bounds)
    if k == 1:
        return float(sps.norm.cdf(bounds[0]))
    t = np.asarray(information[:k], dtype=np.float64)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    return float(
        sps.multivariate_normal.cdf(
            np.asarray(bounds, dtype=np.float64),
            mean=np.zeros(k),
            cov=cov,
            abseps=_MVN_ABSEPS,
            releps=0.0,
            rng=np.random.default_rng(0),  # its quasi-Monte Carlo: reproducible boundaries
        )
    )


@lru_cache(maxsize=256)
def sequential_design(information: tuple[float, ...], alpha: float) -> SequentialDesign:
    """Lan-DeMets O'Brien-Fleming boundaries at ``information`` (increasing, ending at 1)."""
    a = check_alpha(alpha)
    t = tuple(float(x) for x in information)
    if not t or any(x <= 0 for x in t) or any(y <= x for x, y in itertools.pairwise(t)):
        raise ValueError(f"information fractions must increase from > 0, got {information!r}")
    if abs(t[-1] - 1.0) > 1e-12:
        raise ValueError(f"the last look must be at information 1, got {t[-1]!r}")
    spent = tuple(obrien_fleming_spending(x, a) for x in t)
    bounds: list[float] = [float(sps.norm.isf(spent[0]))]
    for k in range(1, len(t)):
        increment = spent[k] - spent[k - 1]
        before = _no_cross(bounds, t)

        def excess(c: float, before: float = before, increment: float = increment) -> float:
            return before - _no_cross([*bounds, c], t) - increment

        # The crossing probability at look k falls as c rises; bracket between 0 and 10.
        bounds.append(float(optimize.brentq(excess, 0.0, 10.0, xtol=1e-6)))
    nominal = tuple(float(sps.norm.sf(c)) for c in bounds)
    return SequentialDesign(t, a, spent, tuple(bounds), nominal)


@dataclass(frozen=True)
class Look:
    """One interim (or the final) analysis of a config."""

    look: int
    n_prompts: int
    information: float
    nominal_alpha: float
    critical_value: float | None
    statistic: float | None
    statistic_inferior: float | None
    decision: Decision | None  # None: undecided at an interim look, go on to the next stage
    final: bool

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


@dataclass(frozen=True)
class SequentialResult:
    """The looks taken so far and where the config was decided.

    ``decision`` is None while the config is still running (undecided at an interim look with
    data for more stages to come); ``stopped_at`` is the 1-based look that decided it.
    """

    design: SequentialDesign
    planned_prompts: tuple[int, ...]
    looks: tuple[Look, ...]
    decision: Decision | None
    stopped_at: int | None
    prompts_used: int
    prompts_saved: int

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def sequential_gate(
    prompt_diffs: Sequence[float],
    planned_prompts: Sequence[int],
    *,
    margin: float,
    alpha: float = 0.05,
) -> SequentialResult:
    """Decide a config look by look from its per-prompt mean differences, in stage order.

    ``planned_prompts`` are the cumulative prompt counts at each look (e.g. ``[6, 12, 18]``);
    ``prompt_diffs`` hold the d_p of the stages run so far (prompts of later stages not yet
    generated are simply absent). A look is taken when its stage is complete; the last planned
    look is final. Pure: the caller decides which stages to generate from ``decision``.
    """
    mg, a = check_margin(margin), check_alpha(alpha)
    plan = tuple(int(p) for p in planned_prompts)
    if not plan or plan[0] < 1 or any(y <= x for x, y in itertools.pairwise(plan)):
        raise ValueError(f"planned prompts per look must increase from >= 1, got {plan!r}")
    d = as_vector(prompt_diffs, "prompt_diffs") if len(prompt_diffs) else np.zeros(0)
    if d.size > plan[-1]:
        raise ValueError(f"{d.size} prompt differences for {plan[-1]} planned prompts")
    design = sequential_design(tuple(p / plan[-1] for p in plan), a)
    looks: list[Look] = []
    decision: Decision | None = None
    for k, n_k in enumerate(plan):
        if d.size < n_k:
            break
        final = k == len(plan) - 1
        q = critical_value(n_k, design.nominal_alpha[k]) if n_k >= 2 else math.inf
        x = d[:n_k] + mg
        stat = float(monotone_t(x[None, :])[0]) if n_k >= 2 else None
        stat_inf = float(monotone_t(-x[None, :])[0]) if n_k >= 2 else None
        look_decision: Decision | None = None
        if stat is not None and stat > q:
            look_decision = NON_INFERIOR
        elif stat_inf is not None and stat_inf > q:
            look_decision = INFERIOR
        elif final:
            look_decision = INCONCLUSIVE if math.isfinite(q) else INSUFFICIENT
        looks.append(
            Look(
                look=k + 1,
                n_prompts=n_k,
                information=design.information[k],
                nominal_alpha=design.nominal_alpha[k],
                critical_value=q if math.isfinite(q) else None,
                statistic=stat,
                statistic_inferior=stat_inf,
                decision=look_decision,
                final=final,
            )
        )
        if look_decision is not None:
            decision = look_decision
            break
    stopped = looks[-1].look if decision is not None else None
    used = looks[-1].n_prompts if looks else 0
    return SequentialResult(
        design=design,
        planned_prompts=plan,
        looks=tuple(looks),
        decision=decision,
        stopped_at=stopped,
        prompts_used=used,
        prompts_saved=plan[-1] - used if decision is not None else 0,
    )
