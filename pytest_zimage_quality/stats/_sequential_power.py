"""The planned power and minimum detectable drop of a sequential design (``_sequential``).

Both are fixed-seed Monte Carlo runs of the design itself: normal per-prompt differences,
standardised so the margin is a shift (T* is scale-free), through the same calibrated
boundaries and the same stopping rule as ``sequential_gate``, NON-INFERIOR first, then
INFERIOR, at the first look that decides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Final

import numpy as np
from scipy import optimize

from ._common import FloatArray, check_alpha
from ._monotone import monotone_t
from ._power import ncp_for_power
from ._sequential import DEFAULT_SPENDING, DRAW_CHUNK, calibrated_design

__all__ = ["POWER_DRAWS", "sequential_mdd_effect", "sequential_power"]

#: Normal samples behind a design's planned power (Monte Carlo SE <= 0.002; about 0.0004 at 0.99).
POWER_DRAWS: Final = 1 << 16
#: Normal samples behind a design's minimum detectable drop (spread about 0.5% of the drop).
MDD_DRAWS: Final = 1 << 13


@lru_cache(maxsize=256)
def sequential_power(
    planned_prompts: tuple[int, ...],
    alpha: float,
    effect: float,
    spending: str = DEFAULT_SPENDING,
) -> float:
    """The planned power of the sequential design: the chance that ``sequential_gate`` ends
    NON-INFERIOR (at any look) for a config with no true drop, whose per-prompt mean
    differences are normal with SD sd; ``effect`` = margin / sd (T* is scale-free, so that is
    all it depends on). Fixed-seed Monte Carlo of ``POWER_DRAWS`` configs through the same
    calibrated boundaries and the same stopping rule (NON-INFERIOR first, then INFERIOR, at the
    first look that decides). Below the fixed-size power of one look at every prompt: the early
    looks spend alpha that the last one no longer has."""
    a = check_alpha(alpha)
    if not (math.isfinite(effect) and effect >= 0):
        raise ValueError(f"effect must be a finite number >= 0, got {effect!r}")
    plan = tuple(int(p) for p in planned_prompts)
    design = calibrated_design(plan, a, spending)
    rng = np.random.default_rng(np.random.SeedSequence([20_251_128, 11, *plan]))
    shift = min(effect, 1e6)  # beyond, every draw clears where a look can stop at all
    ended = 0
    for _ in range(POWER_DRAWS // DRAW_CHUNK):
        x = rng.standard_normal((DRAW_CHUNK, plan[-1])) + shift
        ended += int(np.count_nonzero(_ends_non_inferior(x, plan, design.critical_values)))
    return ended / POWER_DRAWS


@lru_cache(maxsize=256)
def sequential_mdd_effect(
    planned_prompts: tuple[int, ...],
    alpha: float,
    target: float = 0.8,
    spending: str = DEFAULT_SPENDING,
) -> float | None:
    """The sequential design's minimum detectable drop in units of the per-prompt SD: the
    smallest margin / sd at which a config with no true drop ends NON-INFERIOR with probability
    ``target``; None when no look can stop a config.

    ``MDD_DRAWS`` fixed-seed draws, shifted (common random numbers: the pass rate rises in steps
    with the shift, so the root is well defined), bracketed from one look's figure at every
    prompt (the design's is near it) and found by Brent's method to 0.1% of it. Monte Carlo
    spread over seeds: about 0.5% of the drop.
    """
    a = check_alpha(alpha)
    if not (a < float(target) < 1.0):
        raise ValueError(f"target power must be in (alpha, 1), got {target!r}")
    plan = tuple(int(p) for p in planned_prompts)
    design = calibrated_design(plan, a, spending)
    if all(n < 2 or q == math.inf for n, q in zip(plan, design.critical_values, strict=True)):
        return None
    rng = np.random.default_rng(np.random.SeedSequence([20_251_128, 13, *plan]))
    z = rng.standard_normal((MDD_DRAWS, plan[-1]))

    def gap(shift: float) -> float:
        ended = _ends_non_inferior(z + shift, plan, design.critical_values)
        return float(np.mean(ended)) - float(target)

    guess = ncp_for_power(plan[-1], a, float(target)) / math.sqrt(plan[-1])
    lo, hi = guess / 1.25, guess * 1.25
    while gap(hi) < 0:
        lo, hi = hi, hi * 1.25
    while lo > 1e-6 and gap(lo) > 0:
        lo, hi = lo / 1.25, lo
    return float(optimize.brentq(gap, lo, hi, xtol=1e-3 * guess))


def _ends_non_inferior(
    x: FloatArray, plan: tuple[int, ...], critical_values: Sequence[float]
) -> np.ndarray:
    """Per row of standardized prompt differences (margin already added): does the design end
    NON-INFERIOR, stopping at the first look that decides either way (NON-INFERIOR first)?"""
    ended = np.zeros(x.shape[0], dtype=bool)
    alive = np.ones(x.shape[0], dtype=bool)
    for n_k, q in zip(plan, critical_values, strict=True):
        if n_k < 2 or q == math.inf:
            continue  # a look that cannot stop a config
        up = monotone_t(x[:, :n_k]) > q
        down = monotone_t(-x[:, :n_k]) > q
        ended |= alive & up
        alive &= ~(up | down)
    return ended
