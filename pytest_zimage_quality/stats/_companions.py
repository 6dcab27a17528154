"""Companions of the gate's test: the Wilcoxon signed-rank test and a prompt-cluster bootstrap.

They never change a verdict. They answer neighbouring questions (see docs/statistics.md):
the Wilcoxon test is about the pseudo-median (Hodges-Lehmann centre) of the per-prompt
differences, not their mean; the bootstrap bound is about the mean, without the normal model,
but too narrow at small n. A disagreement with the gate becomes a note.
"""

from __future__ import annotations

import inspect
import math
import warnings
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from scipy import stats as sps

from ._common import FloatArray

__all__ = ["Wilcoxon", "bootstrap_lower", "wilcoxon"]

# Exact Wilcoxon enumeration (2**n sign flips) is used with ties/zeros up to this many prompts.
_WILCOXON_PERMUTATION_MAX_N: Final = 16


@dataclass(frozen=True)
class Wilcoxon:
    statistic: float | None
    pvalue: float | None
    can_reject: bool
    n_eff: int
    label: str


def wilcoxon(d: FloatArray, margin: float, alpha: float) -> Wilcoxon:
    """One-sided signed-rank test that ``d + margin`` is centred above 0.

    Exact where it can be: scipy's exact null distribution without ties or zeros (n <= 50);
    with ties or zeros, exact enumeration of the 2**n sign flips up to
    ``_WILCOXON_PERMUTATION_MAX_N`` prompts; the normal approximation beyond.
    Zeros (a difference of exactly -margin, up to rounding) are dropped, Wilcoxon's convention,
    so ``n_eff`` prompts remain; the smallest attainable one-sided p is 1/2**n_eff.
    """
    shifted = d + margin
    tol = 100.0 * float(np.finfo(np.float64).eps) * (float(np.max(np.abs(d))) + margin)
    shifted = np.where(np.abs(shifted) <= tol, 0.0, shifted)
    nonzero = shifted[shifted != 0]
    n_eff = int(nonzero.size)
    can_reject = n_eff > 0 and 0.5**n_eff < alpha
    if n_eff == 0:
        return Wilcoxon(None, None, False, 0, "every per-prompt difference equals -margin")
    has_ties = np.unique(np.abs(nonzero)).size < n_eff
    has_zeros = n_eff < shifted.size
    method: Any
    if not (has_ties or has_zeros) and n_eff <= 50:
        method, label = "exact", "exact"
    elif shifted.size <= _WILCOXON_PERMUTATION_MAX_N:
        # n_resamples >= 2**n makes scipy enumerate every sign flip: exact, no randomness.
        method = sps.PermutationMethod(n_resamples=2**shifted.size)
        label = "exact sign-flip enumeration (ties or zeros)"
    else:
        method, label = "asymptotic", "normal approximation"
    res = sps.wilcoxon(shifted, alternative="greater", method=method, zero_method="wilcox")
    return Wilcoxon(float(res.statistic), float(res.pvalue), can_reject, n_eff, label)


# scipy >= 1.15 names the bootstrap's generator `rng`; older releases `random_state`.
_BOOTSTRAP_RNG_KW: Final = (
    "rng" if "rng" in inspect.signature(sps.bootstrap).parameters else "random_state"
)


def bootstrap_lower(
    d: FloatArray, alpha: float, n_resamples: int, random_state: Any
) -> tuple[float | None, str | None, str | None]:
    """One-sided (1 - alpha) lower bound of the mean from resampling prompts (BCa).

    The per-prompt mean difference d_p carries all of a prompt's seeds, so resampling the d_p is
    resampling prompts (the clusters) with their seeds. A two-sided 1 - 2 alpha interval's lower
    end is the one-sided bound. Falls back to the percentile interval when BCa is degenerate.
    """
    rng = np.random.default_rng(random_state)
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = sps.bootstrap(
                (d,),
                np.mean,
                n_resamples=n_resamples,
                confidence_level=1.0 - 2.0 * alpha,
                method=method,
                vectorized=True,
                **{_BOOTSTRAP_RNG_KW: rng},
            )
        degenerate = False
        for w in caught:
            if issubclass(w.category, (sps.DegenerateDataWarning, RuntimeWarning)):
                degenerate = True  # handled: fall back to the percentile interval, say so
            else:  # not ours to swallow: pass it on
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        low = float(res.confidence_interval.low)
        if not degenerate and math.isfinite(low):
            note = None
            if method == "percentile":
                note = "the BCa bootstrap interval was degenerate; the percentile interval is shown"
            return low, method, note
    return None, None, "the bootstrap interval could not be computed (degenerate resamples)"
