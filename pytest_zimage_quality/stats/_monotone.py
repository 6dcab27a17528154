"""Monotone one-sided confidence bounds for the mean of the per-prompt differences.

Why not the plain t bound. ``mean - t * s / sqrt(n)`` is not monotone in the data: raising a
value that already sits more than (n - 1) / (t sqrt(n)) standard deviations above the mean (about
one SD at n = 6) widens s faster than it lifts the mean, so the bound falls. A gate built on it
can turn NON-INFERIOR into INCONCLUSIVE because one prompt got *better* (the study's NVFP4+FP8e
+0.016 on photo_machine is such a prompt).

What we use. The monotone closure of the t test: the data ``x`` clear a critical value q when
*some* vector ``y <= x`` (the same data with some gains given back) has a studentised mean above
q::

    T*(x) = sup_{y <= x} sqrt(n) mean(y) / sd(y)

Raising any value of x can only enlarge the set of such y, so T* (and every bound and verdict
built on it) is monotone by construction. The supremum is attained by clipping the largest
values at a common level c (the t bound is concave in y), and within each run of clipped values
the best level has a closed form (c = sum(y^2) / sum(y) over the unclipped values), so T* costs
one sort and a cumulative sum. T* >= t always, so its critical value is calibrated: q(n, a) is
the (1 - a) quantile of T* under normal data with mean 0, which does not depend on the SD (T* is
scale-free). Under the normal model the test then has level a exactly (up to the calibration's
Monte Carlo error, about 3e-4 at a = 0.05).

A limit no monotone test escapes: if all n differences lie above -margin, some y <= x is a
constant above -margin, so T* is infinite. Under the null that happens with probability 2^-n,
whatever the spread; a monotone test at level a therefore needs 2^-n < a (5 prompts at
a = 0.05). Below that, ``critical_value`` is ``inf`` and no verdict is possible.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final

import numpy as np
from scipy import stats as sps

from ._common import FloatArray, t_crit

__all__ = [
    "CALIBRATION_DRAWS",
    "critical_value",
    "min_prompts",
    "monotone_bounds",
    "monotone_p_value",
    "monotone_t",
    "t_bounds",
]

#: Normal samples behind each calibrated critical value (fixed seed: reproducible everywhere).
CALIBRATION_DRAWS: Final = 1 << 18
_CHUNK: Final = 1 << 15
_GRID: Final = 65
_ROUNDS: Final = 8


def monotone_t(x: FloatArray) -> FloatArray:
    """T*(x) = sup over y <= x of sqrt(n) mean(y) / sd(y), row-wise for x of shape (R, n).

    +inf when every value of a row is > 0 (a constant y above 0 fits under it); rows need n >= 2.
    """
    arr = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n = arr.shape[1]
    if n < 2:
        raise ValueError("the monotone t statistic needs at least 2 values per row")
    xs = np.sort(arr, axis=1)
    cum = np.cumsum(xs, axis=1)
    cum2 = np.cumsum(xs * xs, axis=1)
    root_n = math.sqrt(n)
    best = np.where(xs[:, 0] > 0, np.inf, -np.inf)
    for k in range(1, n):  # k lowest values kept, the n - k largest clipped to c in [xs_k-1, xs_k]
        a, b, j = cum[:, k - 1], cum2[:, k - 1], n - k
        lo, hi = xs[:, k - 1], xs[:, k]
        with np.errstate(divide="ignore", invalid="ignore"):
            interior = np.where(a > 0, b / a, lo)
        interior = np.clip(interior, lo, hi)
        for c in (lo, interior):
            s = a + j * c
            ss = np.maximum(b + j * c * c - s * s / n, 0.0)
            tiny = ss <= 1e-12 * (b + j * c * c)
            with np.errstate(divide="ignore", invalid="ignore"):
                t = root_n * (s / n) / np.sqrt(ss / (n - 1))
            t = np.where(tiny, np.where(s > 0, np.inf, -np.inf), t)
            best = np.maximum(best, t)
    # No clipping at all: the plain t statistic (c at the top value).
    mean = cum[:, -1] / n
    sd = np.sqrt(np.maximum(cum2[:, -1] - n * mean * mean, 0.0) / (n - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        plain = np.where(sd > 0, root_n * mean / sd, np.where(mean > 0, np.inf, -np.inf))
    return np.asarray(np.maximum(best, plain), dtype=np.float64)


def min_prompts(alpha: float) -> int:
    """Fewest prompts for which a monotone level-alpha verdict exists: 2^-n < alpha."""
    return math.floor(math.log2(1.0 / alpha)) + 1


@lru_cache(maxsize=32)
def _null_sample(n: int) -> FloatArray:
    """Sorted T* of ``CALIBRATION_DRAWS`` normal samples of size n (fixed seed: reproducible)."""
    rng = np.random.default_rng(np.random.SeedSequence([20_251_128, n]))
    draws = [
        monotone_t(rng.standard_normal((_CHUNK, n))) for _ in range(CALIBRATION_DRAWS // _CHUNK)
    ]
    return np.sort(np.concatenate(draws))


def critical_value(n: int, alpha: float) -> float:
    """q with P(T* > q) = alpha for n normal values of mean 0 (``inf`` when 2^-n >= alpha).

    Calibrated by a fixed-seed Monte Carlo of ``CALIBRATION_DRAWS`` samples; never below the
    exact t critical value (T* >= t, so its quantile is at least t's).
    """
    if n < 2 or 0.5**n >= alpha:
        return math.inf
    q = float(np.quantile(_null_sample(n), 1.0 - alpha, method="higher"))
    return max(q, t_crit(n, alpha))


def monotone_p_value(statistic: float, n: int) -> float:
    """P(T* >= statistic) under the null (the calibration sample's tail, at least t's tail)."""
    if n < 2:
        return 1.0
    if statistic == math.inf:
        return 0.5**n
    sample = _null_sample(n)
    tail = float(sample.size - np.searchsorted(sample, statistic, side="left")) / sample.size
    return max(tail, float(sps.t.sf(statistic, n - 1)), 0.5**n)


def _lower(d: FloatArray, q: float) -> float:
    """sup{mu : T*(d - mu) > q}; T*(d - mu) falls as mu rises, so search [min d, max d] on a
    grid of ``_GRID`` points at a time, narrowing to the crossing cell each round."""
    lo, hi = float(np.min(d)), float(np.max(d))
    if hi - lo <= 0 or float(monotone_t((d - lo)[None, :])[0]) <= q:
        return lo
    for _ in range(_ROUNDS):
        mus = np.linspace(lo, hi, _GRID)
        above = monotone_t(d[None, :] - mus[:, None]) > q
        last = int(np.flatnonzero(above)[-1])  # above[0] holds: mus[0] = lo is inside
        if last == _GRID - 1:
            return float(mus[-1])
        lo, hi = float(mus[last]), float(mus[last + 1])
    return lo


def monotone_bounds(d: FloatArray, alpha: float) -> tuple[float | None, float | None]:
    """One-sided (1 - alpha) lower and upper confidence bounds of the mean of ``d``, monotone.

    The lower bound never falls when a value of d rises, nor does the upper bound; both are
    ``None`` when fewer than ``min_prompts(alpha)`` values make a monotone bound impossible.
    """
    n = int(d.size)
    q = critical_value(n, alpha) if n >= 2 else math.inf
    if not math.isfinite(q):
        return None, None
    return _lower(d, q), -_lower(-d, q)


def t_bounds(d: FloatArray, alpha: float) -> tuple[float, float]:
    """The classical one-sided (1 - alpha) t bounds (mean -/+ t_{1-alpha,n-1} s / sqrt(n))."""
    n = int(d.size)
    half = t_crit(n, alpha) * float(np.std(d, ddof=1)) / math.sqrt(n)
    mean = float(np.mean(d))
    return mean - half, mean + half
