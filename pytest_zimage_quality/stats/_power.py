"""Power planned before the run, from a variance prior; the observed MDD kept as information.

Power computed from the data the test just used adds nothing to the test and misleads (Hoenig &
Heisey, "The abuse of power", 2001), so no verdict depends on power. What a run can promise is
planned: from a prior on the two sources of spread of the paired difference,

    sd_between  SD of the true per-prompt mean differences across prompts (a config helps one
                prompt and hurts another; seeds cannot average this away)
    sd_within   SD of one seed's paired difference around its prompt's mean (seed noise)

a suite of n prompts x k seeds has per-prompt differences of SD sqrt(sd_between^2 +
sd_within^2 / k), and the one-sided t test at level alpha, with no true difference, clears -margin
with the noncentral-t probability ``power``. The monotone gate test (``_monotone``) matches the
t test's power within 2 points from 5 prompts (docs/statistics.md, simulated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from scipy import optimize
from scipy import stats as sps

from ._common import check_alpha, check_margin, t_crit, to_dict
from ._monotone import min_prompts

__all__ = [
    "DEFAULT_PRIOR",
    "PowerPlan",
    "VariancePrior",
    "observed_mdd",
    "plan_power",
]

_MAX_PROMPTS: Final = 100_000
_MAX_SEEDS: Final = 10_000
# Largest non-centrality handed to scipy's nct (its survival function is 1 to machine precision
# long before this at any critical value a test at alpha >= 1e-6 uses).
_MAX_NCP: Final = 60.0


@dataclass(frozen=True)
class VariancePrior:
    """The planning spreads of the paired CLIPScore difference (candidate - reference)."""

    sd_between: float
    sd_within: float
    source: str = "given"

    def __post_init__(self) -> None:
        for name in ("sd_between", "sd_within"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.sd_between == 0 and self.sd_within == 0:
            raise ValueError(
                "a variance prior with no spread at all promises power 1 from any data; "
                "give sd_between or sd_within > 0"
            )

    def sd_prompt(self, seeds: float) -> float:
        """SD of a prompt's mean difference over ``seeds`` seeds."""
        return math.sqrt(self.sd_between**2 + self.sd_within**2 / seeds)

    @property
    def sd_image(self) -> float:
        """SD of one image's paired difference (the per-case band's noise)."""
        return math.sqrt(self.sd_between**2 + self.sd_within**2)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_observed(
        cls, sd_diff: float, sd_within: float | None, seeds: float, *, source: str
    ) -> VariancePrior:
        """A prior from a previous run: the SD of its per-prompt means over ``seeds`` seeds and
        its pooled within-prompt SD (method of moments; sd_between is never negative)."""
        within = 0.0 if sd_within is None else float(sd_within)
        between = math.sqrt(max(float(sd_diff) ** 2 - within**2 / seeds, 0.0))
        if sd_within is None:  # one seed: the spread cannot be split; count it all as between
            between = float(sd_diff)
        return cls(sd_between=between, sd_within=within, source=source)


#: Derived from the study (6 prompts x 3 seeds, docs/statistics.md "The variance prior"):
#: sd_within 0.013 from the seed-42 paired differences around their prompt means; sd_between
#: 0.005, the SD of the per-prompt mean differences, counted wholly as between-prompt spread
#: (the cautious split: only that part cannot be averaged away by seeds).
DEFAULT_PRIOR: Final = VariancePrior(sd_between=0.005, sd_within=0.013, source="study default")


@lru_cache(maxsize=4096)
def ncp_for_power(n: int, alpha: float, target: float) -> float:
    """Non-centrality at which the one-sided t test at level alpha has power ``target``."""
    df, tc = n - 1, t_crit(n, alpha)

    def f(lam: float) -> float:
        return float(sps.nct.sf(tc, df, lam)) - target

    hi = 1.0
    while f(hi) < 0:
        hi *= 2.0
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-10))


def _power(sd: float, n: int, margin: float, alpha: float) -> float:
    """P(bound clears -margin) at true difference 0 and per-prompt SD ``sd`` (0 below the
    fewest prompts a monotone verdict needs)."""
    if n < max(2, min_prompts(alpha)):
        return 0.0
    ncp = min(margin * math.sqrt(n) / sd, _MAX_NCP)
    return float(sps.nct.sf(t_crit(n, alpha), n - 1, ncp))


def _smallest(ok: Any, start: int, cap: int) -> int | None:
    """Smallest integer >= start with ok(i), for ok monotone in i; None beyond cap."""
    if ok(start):
        return start
    lo, hi = start, start * 2
    while not ok(hi):
        lo, hi = hi, hi * 2
        if hi > cap:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


@dataclass(frozen=True)
class PowerPlan:
    """What a suite of ``n_prompts`` x ``n_seeds`` can show, before any image is generated.

    ``power``: probability of NON-INFERIOR when the config has no true drop, at the prior's
    spread. ``min_detectable_drop``: the margin cleared with probability ``target``.
    ``prompts_needed`` (at these seeds) / ``seeds_needed`` (at these prompts): the smallest suite
    reaching ``target`` power. ``power_seeds_unlimited``: the power as seeds grow without bound;
    below ``target``, no number of seeds is enough (``seeds_needed`` is None and a note says so).
    """

    n_prompts: int
    n_seeds: int
    margin: float
    alpha: float
    target: float
    prior: VariancePrior
    sd_prompt: float
    power: float
    min_detectable_drop: float | None
    prompts_needed: int | None
    seeds_needed: int | None
    power_seeds_unlimited: float
    adequately_powered: bool
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def plan_power(
    prior: VariancePrior,
    n_prompts: int,
    n_seeds: int,
    *,
    margin: float,
    alpha: float = 0.05,
    target: float = 0.8,
) -> PowerPlan:
    """Plan a suite's power at ``margin`` from ``prior`` (no data involved)."""
    mg, a = check_margin(margin), check_alpha(alpha)
    if not (a < float(target) < 1.0):
        raise ValueError(f"target power must be in (alpha, 1), got {target!r}")
    if n_prompts < 1 or n_seeds < 1:
        raise ValueError(f"a suite needs >= 1 prompt and >= 1 seed, got {n_prompts} x {n_seeds}")
    sd = prior.sd_prompt(n_seeds)
    power = _power(sd, n_prompts, mg, a)
    fewest = max(2, min_prompts(a))
    mdd = (
        ncp_for_power(n_prompts, a, target) * sd / math.sqrt(n_prompts)
        if n_prompts >= fewest
        else None
    )
    prompts = _smallest(lambda n: _power(sd, n, mg, a) >= target, fewest, _MAX_PROMPTS)
    unlimited = _power(prior.sd_between, n_prompts, mg, a) if prior.sd_between > 0 else 1.0
    if n_prompts < fewest:
        unlimited = 0.0
    seeds = None
    notes: list[str] = []
    if n_prompts < fewest:
        notes.append(
            f"{n_prompts} prompts cannot give a verdict at alpha = {a:g}: a monotone test needs "
            f"at least {fewest} (2^-n < alpha); add prompts"
        )
    elif unlimited < target:
        notes.append(
            f"no number of seeds is enough: with {n_prompts} prompts the between-prompt spread "
            f"(sd_between = {prior.sd_between:.4g}) caps the power at {unlimited:.2f} < "
            f"{target:g}; add prompts"
        )
    else:
        seeds = _smallest(
            lambda k: _power(prior.sd_prompt(k), n_prompts, mg, a) >= target, 1, _MAX_SEEDS
        )
    if power < target:
        fix = [f"{prompts} prompts" if prompts else None, f"{seeds} seeds" if seeds else None]
        said = " or ".join(x for x in fix if x)
        notes.append(
            f"power {power:.2f} < {target:g} at margin {mg:g}"
            + (f"; {said} would reach {target:.0%}" if said else "")
        )
    return PowerPlan(
        n_prompts=n_prompts,
        n_seeds=n_seeds,
        margin=mg,
        alpha=a,
        target=float(target),
        prior=prior,
        sd_prompt=sd,
        power=power,
        min_detectable_drop=mdd,
        prompts_needed=prompts,
        seeds_needed=seeds,
        power_seeds_unlimited=unlimited,
        adequately_powered=power >= target,
        notes=tuple(notes),
    )


def observed_mdd(sd_diff: float | None, n: int, alpha: float, target: float = 0.8) -> float | None:
    """The margin this run's *observed* spread would clear with probability ``target``.

    Information only (a plug-in figure, as random as the spread it uses); None when there is no
    usable spread (zero variance, one prompt) rather than a misleading 0.
    """
    if sd_diff is None or sd_diff <= 0 or n < 2:
        return None
    return ncp_for_power(n, alpha, target) * sd_diff / math.sqrt(n)
