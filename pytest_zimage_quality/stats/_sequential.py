"""Group-sequential stages: decide a config early, keep the one-sided error at alpha overall.

Looking at the data after each stage and stopping when the bound clears is optional stopping:
three looks at level alpha each raise the false pass to about 2 alpha. The design here spends
alpha over the looks with a Lan-DeMets spending function alpha(t) of the information fraction
t (prompts so far / prompts planned). The default is linear spending,

    alpha(t) = alpha * t

(Kim & DeMets 1987, power family with rho = 1; Hwang, Shih & DeCani 1990 with gamma = 0), which
spends alpha in proportion to the prompts seen. Why not O'Brien-Fleming (the textbook default):
it spends 2 - 2 Phi(z_{1-alpha/2} / sqrt t), 0.0007 at t = 1/3, and a monotone verdict on n
prompts needs a level above 2^-n (``_monotone``): the example's 6-prompt first stage (2^-6 =
0.0156) could never stop. Linear spending gives it 0.0167, enough to stop a config whose six
prompts all clear -delta by a wide margin (about 45% of the equivalent configs of the example),
at a small cost in power at the last look; Pocock-type spending (Lan & DeMets 1983,
alpha ln(1 + (e - 1) t)) saves a little more and costs more power (docs/statistics.md has the
numbers for all three). A first stage too small for its share (alpha n_1 / N <= 2^-n_1) cannot
stop a config; the plan says so.

Calibration. The gate's statistic is the monotone T* (``_monotone``), not a z, and its looks are
not the canonical joint normal of the textbook boundaries (small n, heavy t-type tails): using
the canonical boundaries' nominal levels overshot alpha (0.053 at 6/12/18 prompts). So the
critical values are calibrated directly: under normal prompt differences with mean -delta, the
sequence (T*_1, ..., T*_K) of the looks' prefixes is scale-free, and a fixed-seed Monte Carlo of
it gives q_1..q_K with P(T*_1 <= q_1, ..., T*_{k-1} <= q_{k-1}, T*_k > q_k) = alpha(t_k) -
alpha(t_{k-1}), exactly the spending (up to the calibration's Monte Carlo error, about 4e-4).
Each look's ``nominal_alpha`` is its marginal P(T*_k > q_k). A look whose spending is below what
a monotone verdict can reach (q = inf) spends nothing, and its share is carried to the next.
Crossing the upper boundary stops the config NON-INFERIOR; crossing the mirror boundary of the
opposite one-sided test stops it INFERIOR (non-binding: the NON-INFERIOR error is computed as
if it never stopped, so stopping only lowers it). At the last look the ordinary verdict applies.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import numpy as np
from scipy import optimize
from scipy import stats as sps

from ._common import FloatArray, as_vector, check_alpha, check_margin, to_dict
from ._monotone import monotone_t
from ._verdicts import INCONCLUSIVE, INFERIOR, INSUFFICIENT, NON_INFERIOR, Decision

__all__ = [
    "DEFAULT_SPENDING",
    "SPENDING_FUNCTIONS",
    "Look",
    "SequentialDesign",
    "SequentialResult",
    "calibrated_design",
    "linear_spending",
    "obrien_fleming_spending",
    "pocock_spending",
    "sequential_design",
    "sequential_gate",
]

_MVN_ABSEPS: Final = 1e-7
#: Normal samples behind each calibrated design (fixed seed: reproducible everywhere).
SEQUENTIAL_DRAWS: Final = 1 << 18
#: Rows of normal samples drawn at once (here and in ``_sequential_power``).
DRAW_CHUNK: Final = 1 << 14

Spending = Callable[[float, float], float]


def obrien_fleming_spending(t: float, alpha: float) -> float:
    """Cumulative one-sided alpha spent by information fraction t (Lan-DeMets, O'Brien-Fleming)."""
    if t <= 0:
        return 0.0
    return float(2.0 - 2.0 * sps.norm.cdf(sps.norm.ppf(1.0 - alpha / 2.0) / math.sqrt(min(t, 1.0))))


def pocock_spending(t: float, alpha: float) -> float:
    """Cumulative one-sided alpha spent by information fraction t (Lan-DeMets, Pocock type)."""
    if t <= 0:
        return 0.0
    return float(alpha * math.log1p((math.e - 1.0) * min(t, 1.0)))


def linear_spending(t: float, alpha: float) -> float:
    """Cumulative one-sided alpha spent by information fraction t: alpha * t (Kim-DeMets power
    family with rho = 1; Hwang-Shih-DeCani with gamma = 0)."""
    return float(alpha * min(max(t, 0.0), 1.0))


#: The spending functions by name; the gate's stages use ``DEFAULT_SPENDING``.
SPENDING_FUNCTIONS: Final[dict[str, Spending]] = {
    "pocock": pocock_spending,
    "linear": linear_spending,
    "obrien-fleming": obrien_fleming_spending,
}
DEFAULT_SPENDING: Final = "linear"


@dataclass(frozen=True)
class SequentialDesign:
    """Boundaries of a K-look design at the given information fractions (the last is 1).

    ``critical_values`` are the calibrated T* boundaries of ``calibrated_design`` (empty for the
    canonical z design of ``sequential_design``); ``z_bounds`` are the normal quantiles of each
    look's ``nominal_alpha``.
    """

    information: tuple[float, ...]
    alpha: float
    spent: tuple[float, ...]
    z_bounds: tuple[float, ...]
    nominal_alpha: tuple[float, ...]
    spending: str = DEFAULT_SPENDING
    critical_values: tuple[float, ...] = ()

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


def _check_fractions(information: Sequence[float]) -> tuple[float, ...]:
    t = tuple(float(x) for x in information)
    if not t or any(x <= 0 for x in t) or any(y <= x for x, y in itertools.pairwise(t)):
        raise ValueError(f"information fractions must increase from > 0, got {information!r}")
    if abs(t[-1] - 1.0) > 1e-12:
        raise ValueError(f"the last look must be at information 1, got {t[-1]!r}")
    return t


@lru_cache(maxsize=256)
def sequential_design(
    information: tuple[float, ...], alpha: float, spending: str = "obrien-fleming"
) -> SequentialDesign:
    """The canonical (z statistic) Lan-DeMets boundaries at ``information`` (increasing, ending
    at 1), for ``spending`` (default O'Brien-Fleming, as before calibration existed). The gate's
    own looks use ``calibrated_design`` (``sequential_gate``): the canonical nominal levels, used
    with T* quantiles, overshoot alpha for linear or Pocock spending (0.053 at 6/12/18 prompts)."""
    a = check_alpha(alpha)
    t = _check_fractions(information)
    spend = SPENDING_FUNCTIONS[spending]
    spent = tuple(spend(x, a) for x in t)
    bounds: list[float] = [float(sps.norm.isf(spent[0]))]
    for k in range(1, len(t)):
        increment = spent[k] - spent[k - 1]
        before = _no_cross(bounds, t)

        def excess(c: float, before: float = before, increment: float = increment) -> float:
            return before - _no_cross([*bounds, c], t) - increment

        # The crossing probability at look k falls as c rises; bracket between 0 and 10.
        bounds.append(float(optimize.brentq(excess, 0.0, 10.0, xtol=1e-6)))
    nominal = tuple(float(sps.norm.sf(c)) for c in bounds)
    return SequentialDesign(t, a, spent, tuple(bounds), nominal, spending)


@lru_cache(maxsize=64)
def _look_statistics(plan: tuple[int, ...]) -> FloatArray:
    """T* of each look's prefix for ``SEQUENTIAL_DRAWS`` normal samples of size plan[-1] with
    mean 0, shape (draws, looks); fixed seed, so every machine calibrates alike."""
    rng = np.random.default_rng(np.random.SeedSequence([20_251_128, 7, *plan]))
    chunks = []
    for _ in range(SEQUENTIAL_DRAWS // DRAW_CHUNK):
        z = rng.standard_normal((DRAW_CHUNK, plan[-1]))
        chunks.append(
            np.column_stack(
                [monotone_t(z[:, :n]) if n >= 2 else np.full(DRAW_CHUNK, -np.inf) for n in plan]
            )
        )
    return np.concatenate(chunks)


@lru_cache(maxsize=256)
def calibrated_design(
    planned_prompts: tuple[int, ...], alpha: float, spending: str = DEFAULT_SPENDING
) -> SequentialDesign:
    """The gate's boundaries for looks at ``planned_prompts`` (cumulative prompt counts): T*
    critical values whose crossing probabilities under the null spend ``spending``'s alpha
    look by look (module docstring). ``inf`` where a look cannot spend (2^-n too large)."""
    a = check_alpha(alpha)
    plan = tuple(int(p) for p in planned_prompts)
    if not plan or plan[0] < 1 or any(y <= x for x, y in itertools.pairwise(plan)):
        raise ValueError(f"planned prompts per look must increase from >= 1, got {plan!r}")
    t = tuple(p / plan[-1] for p in plan)
    spend = SPENDING_FUNCTIONS[spending]
    spent = tuple(spend(x, a) for x in t)
    stats_ = _look_statistics(plan)
    draws = stats_.shape[0]
    alive = np.ones(draws, dtype=bool)
    crossed = 0
    qs: list[float] = []
    nominal: list[float] = []
    for k, n_k in enumerate(plan):
        allowed = math.floor(spent[k] * draws + 1e-9) - crossed
        column = stats_[:, k]
        q = math.inf
        if n_k >= 2 and allowed > 0:
            still = np.sort(column[alive])[::-1]  # at most ``allowed`` alive draws above q
            q = float(still[allowed]) if allowed < still.size else -math.inf
        now = alive & (column > q)
        crossed += int(np.count_nonzero(now))
        alive &= ~now
        qs.append(q)
        nominal.append(float(np.count_nonzero(column > q)) / draws)
    z = tuple(float(sps.norm.isf(p)) if p > 0 else math.inf for p in nominal)
    return SequentialDesign(t, a, spent, z, tuple(nominal), spending, tuple(qs))


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
    design = calibrated_design(plan, a)
    looks: list[Look] = []
    decision: Decision | None = None
    for k, n_k in enumerate(plan):
        if d.size < n_k:
            break
        final = k == len(plan) - 1
        q = design.critical_values[k]
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
