"""Pure statistics for the Z-Image quality gate.

Everything here takes plain sequences (or mappings of them) and returns frozen dataclasses with a
``to_dict()`` that gives JSON-ready values (NaN and infinities become ``None``). It imports numpy
and scipy only: no pytest, no torch, no rendering. ``docs/statistics.md`` explains the choices.

The data for one candidate config against the reference config are CLIPScores per prompt and seed::

    reference = {"photo_woman": [0.334, 0.351, 0.336], "anime": [...], ...}
    candidate = {"photo_woman": [0.337, 0.349, 0.342], "anime": [...], ...}

keyed by prompt, seeds aligned by position (``reference[p][i]`` and ``candidate[p][i]`` come from
the same seed). The prompt is the unit of replication: seeds of one prompt share the prompt's
difficulty, so they are averaged into one per-prompt difference before any test across prompts.

Public API:

- :func:`noninferiority_gate` -> :class:`GateResult`: the per-config gate (one-sided paired
  non-inferiority t-test on per-prompt mean differences, with a Wilcoxon signed-rank test and a
  cluster bootstrap alongside, and honest power figures).
- :func:`per_prompt_comparisons` -> tuple of :class:`PromptComparison`: descriptive per-prompt
  deltas with one-sided paired t-tests across seeds, Holm-adjusted across prompts.
- :func:`holm_adjust`: Holm-Bonferroni adjusted p-values.
- :func:`describe` -> :class:`Description`: n, mean and sample standard deviation.
- :func:`two_axis_verdict` and :func:`lpips_band`: the study's LPIPS x CLIPScore reading.
- :func:`speedup`: mean reference seconds over mean candidate seconds.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any, Final, Literal, overload

import numpy as np
import numpy.typing as npt
from scipy import optimize
from scipy import stats as sps

__all__ = [
    "FAIL",
    "INCONCLUSIVE",
    "INSUFFICIENT",
    "PASS",
    "VERDICTS",
    "Description",
    "GateResult",
    "PromptComparison",
    "ScoreTable",
    "Verdict",
    "describe",
    "holm_adjust",
    "lpips_band",
    "noninferiority_gate",
    "per_prompt_comparisons",
    "speedup",
    "two_axis_verdict",
]

FloatArray = npt.NDArray[np.float64]

#: CLIPScores keyed by prompt; seeds aligned by position.
ScoreTable = Mapping[str, Sequence[float]]

Verdict = Literal["pass", "fail", "inconclusive", "insufficient data"]
PASS: Final = "pass"
FAIL: Final = "fail"
INCONCLUSIVE: Final = "inconclusive"
INSUFFICIENT: Final = "insufficient data"
VERDICTS: Final[tuple[str, ...]] = (PASS, FAIL, INCONCLUSIVE, INSUFFICIENT)

#: Default one-sided confidence of the upper bound on the between-prompt SD that the power
#: figures are computed at (see ``docs/statistics.md``, "Honest power").
DEFAULT_SD_CONFIDENCE: Final = 0.8

#: The study's LPIPS reading, made contiguous (the article leaves 0.05-0.1 and 0.4-0.5 unnamed).
LPIPS_BANDS: Final[tuple[tuple[float, str], ...]] = (
    (0.05, "visually indistinguishable"),
    (0.2, "minor detail variation"),
    (0.4, "clearly different composition"),
    (0.5, "strongly different"),
    (math.inf, "different concept"),
)

_MAX_PROMPTS: Final = 100_000
_MAX_SEEDS: Final = 1_000
# Quadrature points for the rerun-probability integrals, and the slack allowed for their error.
_QUAD_POINTS: Final = 128
_QUAD_TOL: Final = 1e-3
# Largest non-centrality handed to scipy's nct (its survival function is 1 to machine precision
# long before this for any critical value a test at alpha >= 1e-6 uses).
_MAX_NCP: Final = 60.0
# Exact Wilcoxon enumeration (2**n sign flips) is used with ties/zeros up to this many prompts.
_WILCOXON_PERMUTATION_MAX_N: Final = 16


# --------------------------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON-ready copy of ``value``: NaN/inf -> None, tuples -> lists, numpy -> Python."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot make {type(value).__name__} JSON-ready")


def _to_dict(obj: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


def _as_vector(values: Any, what: str) -> FloatArray:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"{what} must be a sequence of numbers, got {type(values).__name__}")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a sequence of numbers: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(arr)):
        bad = [i for i, v in enumerate(arr.tolist()) if not math.isfinite(v)]
        raise ValueError(f"{what} has non-finite values (NaN or inf) at positions {bad}")
    return arr


@dataclass(frozen=True)
class _Paired:
    prompts: tuple[str, ...]
    reference: tuple[FloatArray, ...]
    candidate: tuple[FloatArray, ...]

    @property
    def diffs(self) -> tuple[FloatArray, ...]:
        return tuple(c - r for r, c in zip(self.reference, self.candidate, strict=True))

    @property
    def seeds(self) -> FloatArray:
        return np.array([len(r) for r in self.reference], dtype=np.float64)


def _pair(reference: ScoreTable, candidate: ScoreTable) -> _Paired:
    for name, table in (("reference", reference), ("candidate", candidate)):
        if not isinstance(table, Mapping):
            raise ValueError(
                f"{name} must be a mapping of prompt -> per-seed scores, got {type(table).__name__}"
            )
    if len(reference) == 0:
        raise ValueError("no prompts: reference is empty")
    missing_c = [p for p in reference if p not in candidate]
    missing_r = [p for p in candidate if p not in reference]
    if missing_c or missing_r:
        parts = []
        if missing_c:
            parts.append(f"in reference but not candidate: {missing_c}")
        if missing_r:
            parts.append(f"in candidate but not reference: {missing_r}")
        raise ValueError("reference and candidate must have the same prompts; " + "; ".join(parts))
    prompts = tuple(reference)
    refs: list[FloatArray] = []
    cands: list[FloatArray] = []
    for p in prompts:
        r = _as_vector(reference[p], f"reference[{p!r}]")
        c = _as_vector(candidate[p], f"candidate[{p!r}]")
        if r.size != c.size:
            raise ValueError(
                f"prompt {p!r}: reference has {r.size} seeds but candidate has {c.size}; "
                "seeds are paired by position, so both must list the same seeds"
            )
        refs.append(r)
        cands.append(c)
    return _Paired(prompts, tuple(refs), tuple(cands))


def _check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not (0.0 < a < 0.5):
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha!r}")
    return a


def _is_constant(x: FloatArray) -> bool:
    """True when all values are equal up to rounding (no usable spread estimate).

    scipy warns of catastrophic cancellation when max|x - mean| < 10 eps |mean|; anything within
    100 eps of the largest magnitude is treated as exactly constant, so that never happens.
    """
    spread = float(np.max(np.abs(x - np.mean(x))))
    scale = float(np.max(np.abs(x)))
    return bool(spread <= 100.0 * float(np.finfo(np.float64).eps) * scale)


# --------------------------------------------------------------------------------------------
# describe / speedup / two-axis verdict
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Description:
    """``n``, ``mean`` and sample standard deviation (ddof=1; ``None`` when n = 1)."""

    n: int
    mean: float
    std: float | None

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


def describe(values: Sequence[float]) -> Description:
    """n, mean and sample standard deviation (ddof=1) of ``values``, e.g. "LPIPS mean ± std".

    Raises ValueError for an empty sequence or non-finite values.
    """
    x = _as_vector(values, "values")
    std = float(np.std(x, ddof=1)) if x.size > 1 else None
    return Description(n=int(x.size), mean=float(np.mean(x)), std=std)


def speedup(reference_seconds: Sequence[float], candidate_seconds: Sequence[float]) -> float:
    """Mean reference generation time over mean candidate time (> 1: the candidate is faster)."""
    ref = _as_vector(reference_seconds, "reference_seconds")
    cand = _as_vector(candidate_seconds, "candidate_seconds")
    if np.any(ref <= 0) or np.any(cand <= 0):
        raise ValueError("generation times must be positive")
    return float(np.mean(ref) / np.mean(cand))


def lpips_band(lpips: float) -> str:
    """The study's reading of an LPIPS distance (made contiguous; see ``LPIPS_BANDS``)."""
    v = float(lpips)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"LPIPS must be a finite non-negative number, got {lpips!r}")
    for upper, label in LPIPS_BANDS:
        if v < upper:
            return label
    raise AssertionError("unreachable: the last band is unbounded")  # pragma: no cover


def two_axis_verdict(
    lpips_mean: float | None, gate_verdict: str, *, close_threshold: float = 0.20
) -> str:
    """Read LPIPS (distance from the reference image) and the CLIPScore gate together.

    From the study's "Reading both axes together" table:

    - gate ``"fail"`` -> ``"worse"`` (whatever LPIPS says: prompt fidelity dropped);
    - gate ``"pass"`` and LPIPS < ``close_threshold`` -> ``"close and not worse"``;
    - gate ``"pass"`` and LPIPS >= ``close_threshold`` -> ``"different but not worse"``
      (the typical successful quantisation: a different trajectory, not a worse image);
    - gate ``"pass"`` with no LPIPS -> ``"not worse"``;
    - gate ``"inconclusive"`` / ``"insufficient data"`` -> ``"inconclusive"``.

    The default threshold 0.20 is the study's boundary between "minor composition / detail
    variation" (0.1-0.2) and "same subject, clearly different composition" (0.2-0.4).
    """
    if gate_verdict not in VERDICTS:
        raise ValueError(f"gate_verdict must be one of {VERDICTS}, got {gate_verdict!r}")
    thr = float(close_threshold)
    if not (math.isfinite(thr) and thr > 0):
        raise ValueError(f"close_threshold must be a positive number, got {close_threshold!r}")
    if lpips_mean is not None:
        lp = float(lpips_mean)
        if not math.isfinite(lp) or lp < 0:
            raise ValueError(f"lpips_mean must be a finite non-negative number, got {lpips_mean!r}")
    if gate_verdict == FAIL:
        return "worse"
    if gate_verdict != PASS:
        return "inconclusive"
    if lpips_mean is None:
        return "not worse"
    return "close and not worse" if float(lpips_mean) < thr else "different but not worse"


# --------------------------------------------------------------------------------------------
# Holm-Bonferroni and per-prompt comparisons
# --------------------------------------------------------------------------------------------


def holm_adjust(pvalues: Sequence[float]) -> tuple[float, ...]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Sort ascending, p_(1) <= ... <= p_(m); adjusted p_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)).
    Rejecting where the adjusted value is below alpha controls the family-wise error rate at
    alpha under any dependence between the tests.
    """
    if len(pvalues) == 0:
        return ()
    p = _as_vector(pvalues, "pvalues")
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
        return _to_dict(self)


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
    a = _check_alpha(alpha)
    mg = float(margin)
    if not (math.isfinite(mg) and mg >= 0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    data = _pair(reference, candidate)
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
            if _is_constant(diff):
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


# --------------------------------------------------------------------------------------------
# Power machinery (vectorised; the gate and the simulation tests use the same functions)
# --------------------------------------------------------------------------------------------


def _t_crit(n: int, alpha: float) -> float:
    """One-sided critical value t_{1-alpha, n-1}."""
    return float(sps.t.ppf(1.0 - alpha, n - 1))


@lru_cache(maxsize=4096)
def _sd_factor(n: int, confidence: float) -> float:
    """c with P(c * s >= sigma) = confidence for the sample SD s of n normal values.

    (n - 1) s^2 / sigma^2 ~ chi2(n - 1), so c = sqrt((n - 1) / chi2.ppf(1 - confidence, n - 1)).
    """
    df = n - 1
    return math.sqrt(df / float(sps.chi2.ppf(1.0 - confidence, df)))


@lru_cache(maxsize=4096)
def _ncp_for_power(n: int, alpha: float, target: float) -> float:
    """Non-centrality lambda at which the one-sided t-test at level alpha has power ``target``."""
    df = n - 1
    tc = _t_crit(n, alpha)

    def f(lam: float) -> float:
        return float(sps.nct.sf(tc, df, lam)) - target

    hi = 1.0
    while f(hi) < 0:
        hi *= 2.0
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-10))


@overload
def _power(sd: float, n: int, margin: float, alpha: float) -> float: ...
@overload
def _power(sd: FloatArray, n: int, margin: float, alpha: float) -> FloatArray: ...
def _power(sd: float | FloatArray, n: int, margin: float, alpha: float) -> float | FloatArray:
    """P(lower bound > -margin) when the true mean difference is 0 and the SD of the per-prompt
    differences is ``sd``: the test statistic is then noncentral t with df = n - 1 and
    non-centrality margin * sqrt(n) / sd. sd = 0 gives power 1."""
    tc = _t_crit(n, alpha)
    sd_arr = np.asarray(sd, dtype=np.float64)
    with np.errstate(divide="ignore"):
        ncp = np.where(sd_arr > 0, margin * math.sqrt(n) / sd_arr, np.inf)
    ncp = np.minimum(ncp, _MAX_NCP)
    out = np.asarray(sps.nct.sf(tc, n - 1, ncp), dtype=np.float64)
    out = np.where(sd_arr > 0, out, 1.0)
    if np.ndim(sd) == 0:
        return float(out)
    return out


@overload
def _mdd(sd: float, n: int, alpha: float, target: float) -> float: ...
@overload
def _mdd(sd: FloatArray, n: int, alpha: float, target: float) -> FloatArray: ...
def _mdd(sd: float | FloatArray, n: int, alpha: float, target: float) -> float | FloatArray:
    """Smallest margin the bound clears with probability ``target`` at true difference 0."""
    lam = _ncp_for_power(n, alpha, target)
    out = lam * np.asarray(sd, dtype=np.float64) / math.sqrt(n)
    if np.ndim(sd) == 0:
        return float(out)
    return np.asarray(out, dtype=np.float64)


_U: Final = (np.arange(_QUAD_POINTS, dtype=np.float64) + 0.5) / _QUAD_POINTS


def _rerun_pass_probability(
    lam: float, n: int, alpha: float, target: float, confidence: float
) -> tuple[float, float]:
    """For a rerun with n prompts, true mean difference 0 and non-centrality lam = margin*sqrt(n)/sigma:

    returns (P(verdict "pass"), E[printed power]). The rerun passes when its bound clears -margin
    AND its own printed power (at its SD upper bound c*s') reaches ``target``. With X = (n-1)s'^2 /
    sigma^2 ~ chi2(n-1) independent of the mean (normal data), the bound clears with probability
    Phi(lam - t_c sqrt(X/(n-1))) given X, and the power check holds iff X <= x* =
    (n-1) (lam / (c lam_target))^2. Both expectations over X use the midpoint rule in probability
    space (``_QUAD_POINTS`` points).
    """
    df = n - 1
    tc = _t_crit(n, alpha)
    c = _sd_factor(n, confidence)
    lam_t = _ncp_for_power(n, alpha, target)
    x_star = df * (lam / (c * lam_t)) ** 2
    f_star = float(sps.chi2.cdf(x_star, df))
    if f_star > 0:
        x = sps.chi2.ppf(_U * f_star, df)
        p_pass = f_star * float(np.mean(sps.norm.cdf(lam - tc * np.sqrt(x / df))))
    else:
        p_pass = 0.0
    xq = sps.chi2.ppf(_U, df)
    ncp = np.minimum(lam / (c * np.sqrt(xq / df)), _MAX_NCP)
    e_power = float(np.mean(sps.nct.sf(tc, df, ncp)))
    return p_pass, e_power


@lru_cache(maxsize=4096)
def _rerun_lambda_threshold(n: int, alpha: float, target: float, confidence: float) -> float:
    """Smallest lam = margin*sqrt(n)/sigma at which a rerun with n prompts returns "pass" with
    probability >= target AND at least as often as the power it would print (within the
    quadrature tolerance). ``inf`` when no lam up to 1e4 does (n = 2)."""

    def g(lam: float) -> float:
        p_pass, e_power = _rerun_pass_probability(lam, n, alpha, target, confidence)
        return min(p_pass - target, p_pass - e_power + _QUAD_TOL)

    lo = 1e-3
    hi = max(1.0, _sd_factor(n, confidence) * _ncp_for_power(n, alpha, target))
    while g(hi) < 0:
        lo = hi
        hi *= 2.0
        if hi > 1e4:
            return math.inf
    return float(optimize.brentq(g, lo, hi, xtol=1e-6))


def _prompts_needed(
    sd_plan: float, margin: float, alpha: float, target: float, confidence: float
) -> int | None:
    """Smallest n' with margin*sqrt(n')/sd_plan >= the rerun threshold at n' (None if > cap)."""

    def ok(n: int) -> bool:
        return margin * math.sqrt(n) / sd_plan >= _rerun_lambda_threshold(
            n, alpha, target, confidence
        )

    if ok(2):
        return 2
    lo, hi = 2, 4
    while not ok(hi):
        lo = hi
        hi *= 2
        if hi > _MAX_PROMPTS:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


# --------------------------------------------------------------------------------------------
# The gate
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateResult:
    """The per-config non-inferiority gate's result. Scores are CLIPScores (raw cosine).

    Differences are ``candidate - reference``; ``d_p`` is prompt p's mean over its seeds.

    Test (the verdict rests on it): one-sided paired t-test of H0: mean(d_p) <= -margin vs
    H1: mean(d_p) > -margin. ``lower_bound`` is the one-sided (1 - alpha) lower confidence bound
    of the mean difference; ``passed`` is ``lower_bound > -margin`` (equivalently
    ``p_value < alpha``).

    Alongside (never change the verdict; disagreements become ``notes``): ``wilcoxon_*`` is the
    signed-rank test of ``d_p + margin`` (one-sided, exact for small n); ``wilcoxon_can_reject`` is
    False when no outcome at this n can reach alpha. ``bootstrap_lower`` is the one-sided
    (1 - alpha) BCa lower bound from resampling prompts with replacement.

    Power (at the ``sd_confidence`` one-sided upper confidence bound ``sd_planning`` of the SD of
    d_p): ``power`` = P(``passed``) if the true difference were 0; ``min_detectable_drop`` = the
    margin ``passed`` would clear with probability ``target_power`` at true difference 0;
    ``adequately_powered`` = ``power >= target_power`` (equivalently min_detectable_drop <=
    margin). ``prompts_needed`` / ``seeds_needed``: prompts (at these seeds) or seeds per prompt
    (at these prompts) for a rerun to return verdict "pass" with probability >= target_power when
    there is no true difference. ``sd_within`` is the pooled SD of per-seed differences within a
    prompt, ``sd_between`` the estimated SD of the true per-prompt differences.

    Verdict: "insufficient data" (one prompt); "pass" (passed and adequately powered);
    "inconclusive" (passed but underpowered, or not passed, underpowered and mean_diff > -margin);
    "fail" (not passed, and adequately powered or mean_diff <= -margin).
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
    lower_bound: float | None
    t_statistic: float | None
    p_value: float | None
    wilcoxon_statistic: float | None
    wilcoxon_p: float | None
    wilcoxon_can_reject: bool
    bootstrap_lower: float | None
    bootstrap_method: str | None
    n_resamples: int
    target_power: float
    sd_confidence: float
    sd_planning: float | None
    sd_within: float | None
    sd_between: float | None
    power: float | None
    min_detectable_drop: float | None
    prompts_needed: int | None
    seeds_needed: int | None
    passed: bool
    adequately_powered: bool
    verdict: Verdict
    zero_variance: bool
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return _to_dict(self)


def _verdict(n: int, passed: bool, adequate: bool, mean: float, margin: float) -> Verdict:
    if n < 2:
        return INSUFFICIENT
    if passed:
        return PASS if adequate else INCONCLUSIVE
    if adequate or mean <= -margin:
        return FAIL
    return INCONCLUSIVE


@dataclass(frozen=True)
class _Wilcoxon:
    statistic: float | None
    pvalue: float | None
    can_reject: bool
    n_eff: int
    label: str


def _wilcoxon(d: FloatArray, margin: float, alpha: float) -> _Wilcoxon:
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
        return _Wilcoxon(None, None, False, 0, "every per-prompt difference equals -margin")
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
    return _Wilcoxon(float(res.statistic), float(res.pvalue), can_reject, n_eff, label)


# scipy >= 1.15 names the bootstrap's generator `rng`; older releases `random_state`.
_BOOTSTRAP_RNG_KW: Final = (
    "rng" if "rng" in inspect.signature(sps.bootstrap).parameters else "random_state"
)


def _bootstrap_lower(
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


def noninferiority_gate(
    reference: ScoreTable,
    candidate: ScoreTable,
    *,
    margin: float,
    alpha: float = 0.05,
    power: float = 0.8,
    n_resamples: int = 9999,
    random_state: int | np.random.Generator | None = 0,
    sd_confidence: float = DEFAULT_SD_CONFIDENCE,
    config: str | None = None,
    reference_config: str | None = None,
) -> GateResult:
    """Is ``candidate`` non-inferior to ``reference`` on CLIPScore, by at most ``margin``?

    Args:
        reference, candidate: CLIPScores keyed by prompt, seeds aligned by position
            (``reference[p][i]`` and ``candidate[p][i]`` share prompt p and seed i). Seed counts
            may differ between prompts; both configs must have the same prompts and, per prompt,
            the same number of seeds. Expected-fail prompts should be left out by the caller.
        margin: the non-inferiority margin delta > 0 (CLIPScore units, raw cosine): the largest
            mean drop that still counts as "not worse".
        alpha: one-sided level: a candidate whose true mean drop is delta or more passes with
            probability at most alpha.
        power: target power for the power figures and the "inconclusive" label (default 0.8).
        n_resamples: bootstrap resamples.
        random_state: seed or generator for the bootstrap (default 0: reproducible).
        sd_confidence: the power figures are computed at this one-sided upper confidence bound
            of the SD of the per-prompt differences (default 0.8; 0.5 is about the point
            estimate). See ``docs/statistics.md``.
        config, reference_config: labels carried into the result.

    Returns:
        GateResult. ``verdict`` is "pass", "fail", "inconclusive" or "insufficient data".

    Raises:
        ValueError: mismatched prompts or seed counts, non-finite scores, or bad parameters.
    """
    mg = float(margin)
    if not (math.isfinite(mg) and mg > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    a = _check_alpha(alpha)
    target = float(power)
    if not (a < target < 1.0):
        raise ValueError(f"power must be in (alpha, 1), got {power!r}")
    conf = float(sd_confidence)
    if not (0.5 <= conf < 1.0):
        raise ValueError(f"sd_confidence must be in [0.5, 1), got {sd_confidence!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)):
        raise ValueError(f"n_resamples must be an integer, got {n_resamples!r}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples!r}")

    data = _pair(reference, candidate)
    diffs = data.diffs
    d = np.array([float(np.mean(x)) for x in diffs], dtype=np.float64)
    n = int(d.size)
    seeds = [int(x.size) for x in diffs]
    mean = float(np.mean(d))
    notes: list[str] = []

    # Within-prompt (seed) variance of the per-seed differences, pooled over prompts.
    within_df = sum(k - 1 for k in seeds)
    sd_within: float | None = None
    if within_df > 0:
        ss = sum(float(np.sum((x - np.mean(x)) ** 2)) for x in diffs)
        sd_within = math.sqrt(ss / within_df)
    k_harm = float(len(seeds) / sum(1.0 / k for k in seeds))
    if min(seeds) != max(seeds):
        notes.append(
            f"seeds per prompt vary ({min(seeds)}-{max(seeds)}): per-prompt means have unequal "
            "precision; every prompt still counts once"
        )

    base: dict[str, Any] = {
        "config": config,
        "reference": reference_config,
        "n_prompts": n,
        "n_pairs": int(sum(seeds)),
        "seeds_per_prompt": (min(seeds), max(seeds)),
        "prompts": data.prompts,
        "prompt_diffs": tuple(float(v) for v in d),
        "mean_diff": mean,
        "margin": mg,
        "alpha": a,
        "n_resamples": int(n_resamples),
        "target_power": target,
        "sd_confidence": conf,
        "sd_within": sd_within,
    }

    if n < 2:
        notes.insert(
            0,
            "one prompt: the prompt is the unit of replication (its seeds share its difficulty), "
            "so there is no spread estimate and no test; add prompts",
        )
        return GateResult(
            **base,
            sd_diff=None,
            se_diff=None,
            df=None,
            lower_bound=None,
            t_statistic=None,
            p_value=None,
            wilcoxon_statistic=None,
            wilcoxon_p=None,
            wilcoxon_can_reject=False,
            bootstrap_lower=None,
            bootstrap_method=None,
            sd_planning=None,
            sd_between=None,
            power=None,
            min_detectable_drop=None,
            prompts_needed=None,
            seeds_needed=None,
            passed=False,
            adequately_powered=False,
            verdict=INSUFFICIENT,
            zero_variance=False,
            notes=tuple(notes),
        )

    df = n - 1
    zero_variance = _is_constant(d)
    t_stat: float | None
    if zero_variance:
        sd = 0.0
        se = 0.0
        lower = mean
        t_stat = None
        p_value = 0.0 if mean > -mg else 1.0
        notes.insert(
            0,
            f"zero variance: all {n} per-prompt differences equal {mean:+.6g}; the lower bound is "
            "the observed mean (no sampling spread to widen it)",
        )
    else:
        res = sps.ttest_1samp(d, popmean=-mg, alternative="greater")
        ci = res.confidence_interval(confidence_level=1.0 - a)
        sd = float(np.std(d, ddof=1))
        se = sd / math.sqrt(n)
        lower = float(ci.low)
        t_stat = float(res.statistic)
        p_value = float(res.pvalue)
    passed = lower > -mg

    if n == 2:
        notes.append(
            f"only 2 prompts: the t-test has 1 degree of freedom (critical t = "
            f"{_t_crit(2, a):.2f}), so the bound is very wide"
        )

    # Wilcoxon signed-rank on the shifted differences.
    wil = _wilcoxon(d, mg, a)
    if wil.pvalue is None:
        notes.append(f"Wilcoxon not computed: {wil.label}")
    elif not wil.can_reject:
        dropped = n - wil.n_eff
        notes.append(
            f"Wilcoxon cannot reach alpha={a:g} with {wil.n_eff} prompts"
            + (f" ({dropped} equal to -margin, dropped)" if dropped else "")
            + f": its smallest one-sided p is 1/2^{wil.n_eff} = {0.5**wil.n_eff:.4g}; it needs "
            f"at least {math.floor(math.log2(1 / a)) + 1} prompts"
        )
    elif (wil.pvalue < a) != passed:
        notes.append(
            f"disagreement: the t-test {'passes' if passed else 'does not pass'} but the "
            f"Wilcoxon signed-rank test ({wil.label}) gives p = {wil.pvalue:.4g} "
            f"({'rejects' if wil.pvalue < a else 'does not reject'} a drop of {mg:g}); "
            "check the per-prompt table for an outlying prompt"
        )

    # Cluster bootstrap over prompts.
    boot_method: str | None
    if zero_variance:
        boot_lower: float | None = mean
        boot_method = "none (zero variance)"
    else:
        boot_lower, boot_method, boot_note = _bootstrap_lower(d, a, int(n_resamples), random_state)
        if boot_note:
            notes.append(boot_note)
        if n < 5:
            notes.append(
                f"bootstrap over {n} prompts: too few distinct resamples for a meaningful bound"
            )
    if boot_lower is not None and not zero_variance:
        boot_pass = boot_lower > -mg
        if boot_pass != passed:
            if passed:
                notes.append(
                    f"disagreement: the bootstrap lower bound {boot_lower:+.4g} does not clear "
                    f"-{mg:g} although the t bound {lower:+.4g} does: the differences may be "
                    "skewed or have an outlying prompt"
                )
            else:
                notes.append(
                    f"disagreement: the bootstrap lower bound {boot_lower:+.4g} clears -{mg:g} but "
                    f"the t bound {lower:+.4g} does not; at small n the bootstrap interval is too "
                    "narrow (no t correction), so the t verdict stands"
                )

    # Power figures.
    sd_between: float | None = None
    if sd_within is not None:
        sd_between = math.sqrt(max(sd**2 - sd_within**2 / k_harm, 0.0))
    sd_plan: float | None
    pw: float | None
    mdd: float | None
    prompts_needed: int | None
    seeds_needed: int | None = None
    if zero_variance and sd_within is not None and sd_within > 0:
        sd_plan = pw = mdd = None
        prompts_needed = None
        adequate = False
        notes.append(
            "the per-prompt means coincide although per-seed differences vary: the zero spread is "
            "a coincidence, so power cannot be assessed"
        )
    elif zero_variance:
        sd_plan = 0.0
        pw, mdd = 1.0, 0.0
        adequate = True
        prompts_needed = n
        seeds_needed = min(seeds)
        notes.append(
            "power 1 and minimum detectable drop 0 assume the spread is structurally zero "
            "(e.g. bit-identical images); if it is not, collect more prompts"
        )
    else:
        c = _sd_factor(n, conf)
        sd_plan = c * sd
        pw = _power(sd_plan, n, mg, a)
        mdd = _mdd(sd_plan, n, a, target)
        adequate = pw >= target
        prompts_needed = _prompts_needed(sd_plan, mg, a, target, conf)
        if prompts_needed is None:
            notes.append(f"more than {_MAX_PROMPTS} prompts would be needed at this spread")
        lam_star = _rerun_lambda_threshold(n, a, target, conf)
        if sd_within is None:
            notes.append("one seed per prompt: the seed-to-seed spread is unknown, no seeds_needed")
        elif not math.isfinite(lam_star):
            notes.append(
                f"with {n} prompts no number of seeds makes a rerun pass reliably; add prompts"
            )
        else:
            assert sd_between is not None
            room = (mg * math.sqrt(n) / (lam_star * c)) ** 2 - sd_between**2
            if room <= 0:
                notes.append(
                    f"seeds alone cannot get there: the between-prompt spread (sd_between = "
                    f"{sd_between:.4g}) is too large for {n} prompts; add prompts"
                )
            else:
                k_needed = max(1, math.ceil(sd_within**2 / room - 1e-9))
                if k_needed > _MAX_SEEDS:
                    notes.append(f"more than {_MAX_SEEDS} seeds per prompt would be needed")
                else:
                    seeds_needed = k_needed
    if pw is not None and mdd is not None and not adequate:
        notes.append(
            f"underpowered: power {pw:.2f} < {target:g} (minimum detectable drop {mdd:.4g} > "
            f"margin {mg:g}); this run could not reliably have shown non-inferiority"
        )
    elif adequate and prompts_needed is not None and prompts_needed > n:
        notes.append(
            f"this run is adequately powered, but a rerun of this size could come back "
            f"inconclusive; {prompts_needed} prompts make a 'pass' on rerun at least "
            f"{target:.0%} likely when nothing changed"
        )

    verdict = _verdict(n, passed, adequate, mean, mg)
    return GateResult(
        **base,
        sd_diff=sd,
        se_diff=se,
        df=df,
        lower_bound=lower,
        t_statistic=t_stat,
        p_value=p_value,
        wilcoxon_statistic=wil.statistic,
        wilcoxon_p=wil.pvalue,
        wilcoxon_can_reject=wil.can_reject,
        bootstrap_lower=boot_lower,
        bootstrap_method=boot_method,
        sd_planning=sd_plan,
        sd_between=sd_between,
        power=pw,
        min_detectable_drop=mdd,
        prompts_needed=prompts_needed,
        seeds_needed=seeds_needed,
        passed=passed,
        adequately_powered=adequate,
        verdict=verdict,
        zero_variance=zero_variance,
        notes=tuple(notes),
    )
