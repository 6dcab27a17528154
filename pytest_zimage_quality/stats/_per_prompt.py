"""Per-prompt breakdown: descriptive one-sided paired tests across seeds, Holm-adjusted."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from ._common import ScoreTable, as_vector, check_alpha, is_constant, pair, to_dict

__all__ = ["PromptComparison", "holm_adjust", "per_prompt_comparisons"]


def holm_adjust(pvalues: Sequence[float]) -> tuple[float, ...]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Sort ascending, p_(1) <= ... <= p_(m); adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
    Rejecting where the adjusted value is below alpha controls the family-wise error rate at
    alpha under any dependence between the tests.
    """
    if len(pvalues) == 0:
        return ()
    p = as_vector(pvalues, "pvalues")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted_sorted = np.maximum.accumulate(scaled)
    out = np.empty(m, dtype=np.float64)
    out[order] = adjusted_sorted
    return tuple(float(v) for v in out)


@dataclass(frozen=True)
class PromptComparison:
    """One prompt's candidate-vs-reference CLIPScore comparison across its seeds.

    ``delta`` = ``cand_mean`` - ``ref_mean``. ``p_value`` is a one-sided paired t-test across seeds
    of H0: mean difference >= -margin against H1: < -margin (a drop beyond the margin);
    ``p_adjusted`` is Holm-adjusted over the ``family_size`` prompts that have a p-value, and
    ``flagged`` is ``p_adjusted < alpha``. With one seed there is no test (``None``).
    Descriptive: the gate does not use it.
    """

    prompt: str
    n_seeds: int
    ref_mean: float
    cand_mean: float
    delta: float
    sd_delta: float | None
    t_statistic: float | None
    p_value: float | None
    p_adjusted: float | None
    flagged: bool
    zero_variance: bool
    family_size: int
    alpha: float
    margin: float

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def per_prompt_comparisons(
    reference: ScoreTable,
    candidate: ScoreTable,
    *,
    alpha: float = 0.05,
    margin: float = 0.0,
) -> tuple[PromptComparison, ...]:
    """Per-prompt means, deltas and Holm-corrected one-sided paired tests for a drop.

    For each prompt, the per-seed differences ``candidate - reference`` are tested with a
    one-sided paired t-test (H1: mean difference < -margin; ``margin=0`` tests for any drop).
    The p-values of all prompts with at least two seeds are Holm-Bonferroni adjusted, which
    controls the probability of flagging any prompt that did not really drop (the family-wise
    error rate) at ``alpha``. When a prompt's per-seed differences are all equal, its p-value is
    0 (the whole sample lies beyond ``-margin``) or 1.
    """
    a = check_alpha(alpha)
    mg = float(margin)
    if not (math.isfinite(mg) and mg >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    data = pair(reference, candidate)
    rows: list[dict[str, Any]] = []
    for prompt, ref, cand in zip(data.prompts, data.reference, data.candidate, strict=True):
        diff = cand - ref
        k = int(diff.size)
        row: dict[str, Any] = {
            "prompt": prompt,
            "n_seeds": k,
            "ref_mean": float(np.mean(ref)),
            "cand_mean": float(np.mean(cand)),
            "delta": float(np.mean(cand) - np.mean(ref)),
            "sd_delta": None,
            "t_statistic": None,
            "p_value": None,
            "zero_variance": False,
        }
        if k >= 2:
            if is_constant(diff):
                row["sd_delta"] = 0.0
                row["zero_variance"] = True
                row["p_value"] = 0.0 if float(np.mean(diff)) < -mg else 1.0
            else:
                res = sps.ttest_1samp(diff, popmean=-mg, alternative="less")
                row["sd_delta"] = float(np.std(diff, ddof=1))
                row["t_statistic"] = float(res.statistic)
                row["p_value"] = float(res.pvalue)
        rows.append(row)
    tested = [i for i, r in enumerate(rows) if r["p_value"] is not None]
    adjusted = holm_adjust([rows[i]["p_value"] for i in tested])
    adj_by_index = dict(zip(tested, adjusted, strict=True))
    out = []
    for i, r in enumerate(rows):
        p_adj = adj_by_index.get(i)
        out.append(
            PromptComparison(
                **r,
                p_adjusted=p_adj,
                flagged=p_adj is not None and p_adj < a,
                family_size=len(tested),
                alpha=a,
                margin=mg,
            )
        )
    return tuple(out)
