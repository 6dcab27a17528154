"""Literal-number tests of the pure statistics module (hand-checked arithmetic in comments)."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from pytest_zimage_quality.stats import (
    FAIL,
    INCONCLUSIVE,
    INSUFFICIENT,
    PASS,
    Description,
    GateResult,
    _mdd,
    _ncp_for_power,
    _power,
    _rerun_lambda_threshold,
    _rerun_pass_probability,
    _sd_factor,
    describe,
    holm_adjust,
    lpips_band,
    noninferiority_gate,
    per_prompt_comparisons,
    speedup,
    two_axis_verdict,
)

# --------------------------------------------------------------------------------------------
# The study (seed article): per-prompt CLIPScore means over 3 seeds, and the headline means.
# --------------------------------------------------------------------------------------------

PROMPTS = ("photo_woman", "photo_machine", "anime", "text_render", "chinese", "abstract")
STUDY = {
    "BF16": (0.3403, 0.3273, 0.3187, 0.3628, 0.2642, 0.3932),
    "FP8scaled": (0.3404, 0.3354, 0.3173, 0.3656, 0.2626, 0.3926),
    "NVFP4": (0.3383, 0.3292, 0.3130, 0.3642, 0.2658, 0.4030),
    "NVFP4+FP8e": (0.3426, 0.3433, 0.3174, 0.3623, 0.2731, 0.3938),
}
HEADLINE = {"BF16": 0.3344, "FP8scaled": 0.3356, "NVFP4": 0.3356, "NVFP4+FP8e": 0.3388}


def _table(values: Sequence[float]) -> dict[str, list[float]]:
    """Per-prompt means as one-'seed' tables (the gate's d_p are exactly these differences)."""
    return {p: [v] for p, v in zip(PROMPTS, values, strict=True)}


@pytest.mark.parametrize("config", list(STUDY))
def test_study_per_prompt_means_reproduce_headline(config):
    # BF16: (0.3403 + 0.3273 + 0.3187 + 0.3628 + 0.2642 + 0.3932) / 6 = 2.0065 / 6 = 0.334417
    # FP8scaled: 2.0139 / 6 = 0.335650; NVFP4: 2.0135 / 6 = 0.335583;
    # NVFP4+FP8e: 2.0325 / 6 = 0.338750.
    # Both tables are rounded to 4 decimals and the design is balanced (3 seeds per cell), so the
    # mean of the per-prompt means must match the headline within half a unit in the last place.
    got = describe(STUDY[config])
    assert got.n == 6
    assert abs(got.mean - HEADLINE[config]) <= 0.5e-4 + 1e-12


def test_study_nvfp4_fp8e_through_the_gate():
    # d_p = NVFP4+FP8e - BF16 = [0.0023, 0.0160, -0.0013, -0.0005, 0.0089, 0.0006]
    # mean = 0.0260 / 6 = 0.0043333
    # squared deviations: 4.1344e-6, 1.36111e-4, 3.17344e-5, 2.33611e-5, 2.08544e-5, 1.39378e-5
    # sum = 2.30133e-4; var = sum / 5 = 4.60267e-5; sd = 0.0067843; se = sd / sqrt(6) = 0.0027697
    # t = (mean + 0.01) / se = 0.0143333 / 0.0027697 = 5.1751 on 5 df
    # t_{0.95,5} = 2.015048; lower bound = 0.0043333 - 2.015048 * 0.0027697 = -0.0012477 > -0.01
    # Wilcoxon on d_p + 0.01: all six positive -> W+ = 1+...+6 = 21, exact p = 1/2^6 = 0.015625.
    # Power at the 80% upper bound of the SD: chi2_{0.2,5} = 2.342541, c = sqrt(5/2.342541) =
    # 1.460972, sd_U = 0.0099117; ncp = 0.01 * sqrt(6) / 0.0099117 = 2.4714;
    # power = P(nct(5, 2.4714) > 2.015048) = 0.6835 < 0.8 -> "inconclusive".
    # MDD = ncp_0.8(df 5) * sd_U / sqrt(6) = 2.904582 * 0.0099117 / 2.449490 = 0.011753.
    r = noninferiority_gate(
        _table(STUDY["BF16"]),
        _table(STUDY["NVFP4+FP8e"]),
        margin=0.01,
        config="NVFP4+FP8e",
        reference_config="BF16",
    )
    assert r.config == "NVFP4+FP8e"
    assert r.reference == "BF16"
    assert r.n_prompts == 6
    assert r.df == 5
    assert r.mean_diff == pytest.approx(0.0043333, abs=1e-7)
    assert r.sd_diff == pytest.approx(0.0067843, abs=1e-7)
    assert r.se_diff == pytest.approx(0.0027697, abs=1e-7)
    assert r.t_statistic == pytest.approx(5.1751, abs=1e-4)
    assert r.p_value == pytest.approx(0.001770, abs=1e-6)
    assert r.lower_bound == pytest.approx(-0.0012477, abs=1e-7)
    assert r.passed
    assert r.wilcoxon_statistic == 21.0
    assert r.wilcoxon_p == pytest.approx(0.015625)
    assert r.wilcoxon_can_reject
    assert r.bootstrap_method == "BCa"
    assert r.bootstrap_lower is not None
    assert r.bootstrap_lower > -0.01
    assert r.sd_planning == pytest.approx(0.0099117, abs=1e-7)
    assert r.power == pytest.approx(0.6835, abs=1e-4)
    assert r.min_detectable_drop == pytest.approx(0.011753, abs=1e-6)
    assert not r.adequately_powered
    assert r.verdict == INCONCLUSIVE
    assert r.prompts_needed == 16
    assert r.seeds_needed is None  # one "seed" (the per-prompt mean) per prompt: no sigma_w
    assert any("underpowered" in n for n in r.notes)


@pytest.mark.parametrize(
    ("config", "lower", "power", "mdd", "verdict", "prompts_needed"),
    [
        # FP8scaled: d = [0.0001, 0.0081, -0.0014, 0.0028, -0.0016, -0.0006], mean 0.0012333,
        # sd 0.0037206, se 0.0015189, bound 0.0012333 - 2.015048 * 0.0015189 = -0.0018274.
        ("FP8scaled", -0.0018274, 0.98495, 0.0064455, PASS, 9),
        # NVFP4: d = [-0.0020, 0.0019, -0.0057, 0.0014, 0.0016, 0.0098], mean 0.0011667,
        # sd 0.0051477, se 0.0021015, bound 0.0011667 - 2.015048 * 0.0021015 = -0.0030680.
        ("NVFP4", -0.0030680, 0.87204, 0.0089179, PASS, 12),
    ],
)
def test_study_other_configs_through_the_gate(config, lower, power, mdd, verdict, prompts_needed):
    r = noninferiority_gate(_table(STUDY["BF16"]), _table(STUDY[config]), margin=0.01)
    assert r.lower_bound == pytest.approx(lower, abs=1e-7)
    assert r.power == pytest.approx(power, abs=1e-5)
    assert r.min_detectable_drop == pytest.approx(mdd, abs=1e-7)
    assert r.verdict == verdict
    assert r.prompts_needed == prompts_needed
    # Adequately powered, yet a rerun of 6 prompts could come back inconclusive: said so.
    assert any("rerun" in n for n in r.notes)


def test_study_per_prompt_deltas_without_seeds():
    rows = per_prompt_comparisons(_table(STUDY["BF16"]), _table(STUDY["NVFP4+FP8e"]))
    assert [r.prompt for r in rows] == list(PROMPTS)
    # photo_machine: 0.3433 - 0.3273 = 0.0160 (the article's "NVFP4+FP8e up 0.0160")
    assert rows[1].delta == pytest.approx(0.0160, abs=1e-12)
    # One value per cell: no test across seeds, nothing flagged, family of size 0.
    assert all(r.p_value is None and not r.flagged and r.family_size == 0 for r in rows)


# --------------------------------------------------------------------------------------------
# Hand-checked gate arithmetic
# --------------------------------------------------------------------------------------------


def test_gate_hand_checked_three_prompts_two_seeds():
    # Per-seed differences: a: [+0.01, +0.01], b: [+0.02, +0.02], c: [+0.03, +0.03]
    # -> d = [0.01, 0.02, 0.03]; mean 0.02, sd 0.01, se 0.01/sqrt(3) = 0.0057735.
    # t = (0.02 + 0.01) / se = 3*sqrt(3) = 5.196152 on 2 df.
    # df = 2 has a closed form: P(T > t) = 1/2 - t / (2 sqrt(t^2 + 2)):
    #   p = 0.5 - 5.196152 / (2 * sqrt(29)) = 0.5 - 0.482451 = 0.017549.
    # critical value: t / sqrt(t^2 + 2) = 0.9 -> t^2 = 1.62 / 0.19 -> t_c = 2.919986;
    # lower bound = 0.02 - 2.919986 * 0.0057735 = 0.02 - 0.0168585 = 0.0031415.
    ref = {"a": [0.30, 0.32], "b": [0.30, 0.32], "c": [0.30, 0.32]}
    cand = {"a": [0.31, 0.33], "b": [0.32, 0.34], "c": [0.33, 0.35]}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.n_prompts == 3
    assert r.n_pairs == 6
    assert r.seeds_per_prompt == (2, 2)
    assert r.mean_diff == pytest.approx(0.02, abs=1e-12)
    assert r.sd_diff == pytest.approx(0.01, abs=1e-12)
    assert r.se_diff == pytest.approx(0.0057735, abs=1e-7)
    assert r.t_statistic == pytest.approx(5.196152, abs=1e-5)
    assert r.p_value == pytest.approx(0.017549, abs=1e-6)
    assert r.lower_bound == pytest.approx(0.0031415, abs=1e-7)
    assert r.passed
    # Seeds agree exactly within each prompt: sigma_w = 0, so all the spread is between prompts.
    assert r.sd_within == pytest.approx(0.0, abs=1e-12)
    assert r.sd_between == pytest.approx(0.01, abs=1e-12)
    # 3 prompts: Wilcoxon's smallest one-sided p is 1/8 > 0.05.
    assert not r.wilcoxon_can_reject
    assert r.wilcoxon_p == pytest.approx(0.125)
    assert any("Wilcoxon cannot reach" in n for n in r.notes)
    # Power at sd_U = 0.01 * sqrt(2 / chi2_{0.2,2}) = 0.01 * sqrt(2 / 0.446287) = 0.0211694:
    # ncp = 0.01 * sqrt(3) / 0.0211694 = 0.8182 -> far below 80% power.
    assert r.sd_planning == pytest.approx(0.0211694, abs=1e-7)
    assert r.power is not None
    assert r.power < 0.8
    assert r.verdict == INCONCLUSIVE


def test_power_matches_independent_integration():
    # Power = P((Z + ncp) / sqrt(X / df) > t_c), Z ~ N(0, 1), X ~ chi2(df): integrate over X.
    n, sd, margin, alpha = 8, 0.006, 0.01, 0.05
    df, tc, ncp = n - 1, sps.t.ppf(0.95, n - 1), margin * math.sqrt(n) / sd

    def integrand(x):
        return sps.chi2.pdf(x, df) * sps.norm.sf(tc * math.sqrt(x / df) - ncp)

    expected, _ = integrate.quad(integrand, 0, np.inf)
    assert _power(sd, n, margin, alpha) == pytest.approx(expected, abs=1e-8)
    # MDD is the margin at which that power is exactly the target.
    mdd = _mdd(sd, n, alpha, 0.8)
    assert _power(sd, n, mdd, alpha) == pytest.approx(0.8, abs=1e-9)
    assert _ncp_for_power(n, alpha, 0.8) == pytest.approx(mdd * math.sqrt(n) / sd, abs=1e-9)


def test_sd_factor_is_the_chi_square_upper_bound():
    # n = 6: chi2_{0.2,5} = 2.342541 -> c = sqrt(5 / 2.342541) = 1.460972
    assert _sd_factor(6, 0.8) == pytest.approx(1.460972, abs=1e-6)
    # confidence 0.5 is the median-unbiased SD: chi2 median with 5 df = 4.351460 -> 1.071933
    assert _sd_factor(6, 0.5) == pytest.approx(1.071933, abs=1e-6)


def test_rerun_threshold_is_minimal_and_huge_at_n2():
    lam = _rerun_lambda_threshold(10, 0.05, 0.8, 0.8)
    p_pass, e_power = _rerun_pass_probability(lam * 1.001, 10, 0.05, 0.8, 0.8)
    assert p_pass >= 0.8
    assert p_pass >= e_power - 1e-3
    p_pass, e_power = _rerun_pass_probability(lam * 0.99, 10, 0.05, 0.8, 0.8)
    assert p_pass < 0.8 or p_pass < e_power - 1e-3
    # With 2 prompts (1 df, sd bound factor 3.95) a rerun needs margin*sqrt(2)/sigma of about 74.
    assert _rerun_lambda_threshold(2, 0.05, 0.8, 0.8) > 50
    assert _rerun_lambda_threshold(3, 0.05, 0.8, 0.8) < 20


# --------------------------------------------------------------------------------------------
# Zero variance, tiny n, ragged seeds
# --------------------------------------------------------------------------------------------


def test_zero_variance_identical_images():
    scores = {"a": [0.31, 0.33, 0.35], "b": [0.29, 0.30, 0.28], "c": [0.40, 0.41, 0.39]}
    r = noninferiority_gate(scores, scores, margin=0.01)
    assert r.zero_variance
    assert r.mean_diff == 0.0
    assert r.sd_diff == 0.0
    assert r.lower_bound == 0.0  # the bound is the observed mean
    assert r.t_statistic is None
    assert r.p_value == 0.0
    assert r.passed
    assert r.power == 1.0
    assert r.min_detectable_drop == 0.0
    assert r.verdict == PASS
    assert r.notes[0].startswith("zero variance")
    d = r.to_dict()
    assert d["t_statistic"] is None
    json.dumps(d, allow_nan=False)


def test_zero_variance_constant_shift_below_margin_fails():
    ref = {"a": [0.31, 0.33], "b": [0.29, 0.30], "c": [0.40, 0.41], "d": [0.25, 0.27]}
    # subtracting 0.02 is not exact in binary: the d_p differ in the last bits, which must not
    # reach scipy (it would warn of catastrophic cancellation) and must count as zero variance.
    cand = {p: [v - 0.02 for v in vs] for p, vs in ref.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.zero_variance
    assert r.lower_bound == pytest.approx(-0.02, abs=1e-12)
    assert r.p_value == 1.0
    assert not r.passed
    assert r.verdict == FAIL


def test_zero_spread_by_coincidence_is_not_powered():
    # Per-prompt means coincide (0.01 each) though the seeds disagree: no power claim.
    ref = {"a": [0.30, 0.30], "b": [0.30, 0.30], "c": [0.30, 0.30]}
    cand = {"a": [0.30, 0.32], "b": [0.32, 0.30], "c": [0.305, 0.315]}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.zero_variance
    assert r.passed
    assert r.power is None
    assert r.verdict == INCONCLUSIVE


def test_one_prompt_is_insufficient_data():
    r = noninferiority_gate({"a": [0.30, 0.31, 0.32]}, {"a": [0.31, 0.32, 0.33]}, margin=0.01)
    assert r.verdict == INSUFFICIENT
    assert r.n_prompts == 1
    assert r.mean_diff == pytest.approx(0.01, abs=1e-12)
    assert r.lower_bound is None
    assert r.p_value is None
    assert r.power is None
    assert not r.passed
    assert not r.adequately_powered
    assert "unit of replication" in r.notes[0]
    json.dumps(r.to_dict(), allow_nan=False)


def test_two_prompts_hand_checked():
    # d = [0.01, 0.03]: mean 0.02, sd = 0.02 / sqrt(2) = 0.0141421, se = 0.0141421 / sqrt(2) = 0.01
    # t = (0.02 + 0.01) / 0.01 = 3 on 1 df (Cauchy): p = 1/2 - atan(3)/pi = 0.5 - 0.3975836
    #   = 0.1024164; t_c = tan(0.45 pi) = 6.3137515; bound = 0.02 - 0.0631375 = -0.0431375.
    r = noninferiority_gate({"a": [0.30], "b": [0.30]}, {"a": [0.31], "b": [0.33]}, margin=0.01)
    assert r.df == 1
    assert r.se_diff == pytest.approx(0.01, abs=1e-12)
    assert r.t_statistic == pytest.approx(3.0, abs=1e-9)
    assert r.p_value == pytest.approx(0.1024164, abs=1e-7)
    assert r.lower_bound == pytest.approx(-0.0431375, abs=1e-7)
    assert not r.passed
    assert not r.wilcoxon_can_reject  # smallest p with 2 prompts = 1/4
    assert r.wilcoxon_p == pytest.approx(0.25)
    # Mean is above -margin and the test is underpowered: inconclusive, not fail.
    assert r.verdict == INCONCLUSIVE
    assert any("only 2 prompts" in n for n in r.notes)
    assert r.prompts_needed is not None
    assert r.prompts_needed >= 3


def test_two_prompts_clear_drop_fails():
    r = noninferiority_gate({"a": [0.30], "b": [0.30]}, {"a": [0.27], "b": [0.28]}, margin=0.01)
    assert r.mean_diff == pytest.approx(-0.025, abs=1e-12)
    assert r.verdict == FAIL


def test_ragged_seeds():
    # a: diffs [0.01] (k=1); b: [0.00, 0.02] (k=2, mean 0.01); c: [0.02, 0.03, 0.04] (mean 0.03)
    # d = [0.01, 0.01, 0.03]; pooled within-prompt SS = (0.01^2 + 0.01^2) + (0.01^2 + 0 + 0.01^2)
    #   = 4e-4 over (0 + 1 + 2) = 3 df -> sd_within = sqrt(1.3333e-4) = 0.0115470.
    ref = {"a": [0.30], "b": [0.30, 0.30], "c": [0.30, 0.30, 0.30]}
    cand = {"a": [0.31], "b": [0.30, 0.32], "c": [0.32, 0.33, 0.34]}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.seeds_per_prompt == (1, 3)
    assert r.n_pairs == 6
    assert r.prompt_diffs == pytest.approx((0.01, 0.01, 0.03), abs=1e-12)
    assert r.sd_within == pytest.approx(0.0115470, abs=1e-7)
    # harmonic mean of (1, 2, 3) = 3 / (1 + 1/2 + 1/3) = 1.636364; sd_diff^2 = 1.3333e-4;
    # sigma_w^2 / k_h = 1.3333e-4 / 1.636364 = 8.1481e-5; sd_between = sqrt(5.1852e-5) = 0.0072008
    assert r.sd_between == pytest.approx(0.0072008, abs=1e-7)
    assert any("seeds per prompt vary" in n for n in r.notes)


def test_seeds_needed_found_when_seed_noise_dominates():
    rng = np.random.default_rng(7)
    ref = {f"p{i}": list(0.3 + rng.normal(0, 0.03, 3)) for i in range(12)}
    cand = {p: [v + rng.normal(0.0, 0.02) for v in vs] for p, vs in ref.items()}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.sd_within is not None
    assert r.sd_within > 0.015
    assert r.seeds_needed is not None
    assert r.seeds_needed > 3


def test_seeds_cannot_fix_between_prompt_spread():
    rng = np.random.default_rng(3)
    effects = rng.normal(0.0, 0.03, 8)  # large prompt-to-prompt differences
    ref = {f"p{i}": [0.3, 0.31, 0.32] for i in range(8)}
    cand = {
        f"p{i}": [v + e + rng.normal(0, 1e-4) for v in ref[f"p{i}"]] for i, e in enumerate(effects)
    }
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.seeds_needed is None
    assert any("seeds alone cannot" in n for n in r.notes)


def test_wilcoxon_drops_differences_equal_to_minus_margin():
    # d = [-0.01, 0, 0, 0.01, 0.02]; d + 0.01 = [0 (to rounding), 0.01, 0.01, 0.02, 0.03]
    # The zero is dropped: 4 values with ranks 1.5, 1.5, 3, 4 -> W+ = 10 (all positive), and
    # exact enumeration of 2^5 sign flips of the full vector gives p = 2/32 = 0.0625 (the zero
    # flips freely). 4 prompts cannot reach p < 0.05 (1/16 = 0.0625).
    ref = {p: [0.30] for p in "abcde"}
    cand = {"a": [0.29], "b": [0.30], "c": [0.30], "d": [0.31], "e": [0.32]}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.wilcoxon_statistic == 10.0
    assert r.wilcoxon_p == pytest.approx(0.0625)
    assert not r.wilcoxon_can_reject
    assert any("with 4 prompts (1 equal to -margin, dropped)" in n for n in r.notes)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "candidate", "match"),
    [
        ({"a": [0.3]}, {"b": [0.3]}, "same prompts"),
        ({"a": [0.3], "b": [0.3]}, {"a": [0.3]}, "in reference but not candidate"),
        ({"a": [0.3, 0.3]}, {"a": [0.3]}, "2 seeds but candidate has 1"),
        ({"a": [0.3, float("nan")]}, {"a": [0.3, 0.3]}, "non-finite"),
        ({"a": [0.3]}, {"a": [float("inf")]}, "non-finite"),
        ({"a": []}, {"a": []}, "empty"),
        ({}, {}, "no prompts"),
        ({"a": "0.3"}, {"a": [0.3]}, "sequence of numbers"),
        ({"a": [[0.3]]}, {"a": [[0.3]]}, "one-dimensional"),
        ([0.3], {"a": [0.3]}, "mapping"),
    ],
)
def test_gate_rejects_bad_data(reference, candidate, match):
    with pytest.raises(ValueError, match=match):
        noninferiority_gate(reference, candidate, margin=0.01)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"margin": 0.0}, "margin"),
        ({"margin": -0.01}, "margin"),
        ({"margin": float("nan")}, "margin"),
        ({"margin": 0.01, "alpha": 0.0}, "alpha"),
        ({"margin": 0.01, "alpha": 0.6}, "alpha"),
        ({"margin": 0.01, "power": 0.01}, "power"),
        ({"margin": 0.01, "power": 1.0}, "power"),
        ({"margin": 0.01, "sd_confidence": 0.3}, "sd_confidence"),
        ({"margin": 0.01, "n_resamples": 0}, "n_resamples"),
    ],
)
def test_gate_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        noninferiority_gate({"a": [0.3], "b": [0.3]}, {"a": [0.3], "b": [0.31]}, **kwargs)


# --------------------------------------------------------------------------------------------
# Holm and per-prompt comparisons
# --------------------------------------------------------------------------------------------


def test_holm_by_hand():
    # p = [0.01, 0.04, 0.03, 0.005], m = 4. Sorted: 0.005, 0.01, 0.03, 0.04
    # scaled by (4, 3, 2, 1): 0.02, 0.03, 0.06, 0.04 -> running max: 0.02, 0.03, 0.06, 0.06
    # back in input order: [0.03, 0.06, 0.06, 0.02]
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx((0.03, 0.06, 0.06, 0.02))
    # capped at 1: [0.6, 0.7] -> 2 * 0.6 = 1.2 -> 1; max(1, 0.7) = 1
    assert holm_adjust([0.6, 0.7]) == pytest.approx((1.0, 1.0))
    assert holm_adjust([]) == ()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_adjust([1.2])


def test_per_prompt_hand_checked_with_holm():
    # drop: diffs [-0.01, -0.02, -0.03]: mean -0.02, sd 0.01, t = -0.02 / (0.01/sqrt 3) = -2 sqrt 3
    #   = -3.464102 on 2 df; p(less) = 1/2 - 3.464102 / (2 sqrt(12 + 2)) = 0.5 - 0.462910
    #   = 0.037090 -> below 0.05 on its own...
    # flat: diffs [0.01, 0.00, -0.01]: mean 0, t = 0, p = 0.5
    # Holm with m = 2: 2 * 0.037090 = 0.074180, then max(0.074180, 0.5) = 0.5
    # ...but 0.074 after correcting for two prompts: not flagged.
    ref = {"drop": [0.30, 0.30, 0.30], "flat": [0.30, 0.30, 0.30], "single": [0.30]}
    cand = {"drop": [0.29, 0.28, 0.27], "flat": [0.31, 0.30, 0.29], "single": [0.20]}
    rows = {r.prompt: r for r in per_prompt_comparisons(ref, cand)}
    drop = rows["drop"]
    assert drop.n_seeds == 3
    assert drop.ref_mean == pytest.approx(0.30)
    assert drop.cand_mean == pytest.approx(0.28)
    assert drop.delta == pytest.approx(-0.02, abs=1e-12)
    assert drop.t_statistic == pytest.approx(-3.464102, abs=1e-6)
    assert drop.p_value == pytest.approx(0.037090, abs=1e-6)
    assert drop.p_adjusted == pytest.approx(0.074180, abs=1e-6)
    assert not drop.flagged
    assert rows["flat"].p_value == pytest.approx(0.5, abs=1e-9)
    assert rows["flat"].p_adjusted == pytest.approx(0.5, abs=1e-9)
    single = rows["single"]
    assert single.p_value is None
    assert single.p_adjusted is None
    assert not single.flagged
    assert drop.family_size == 2
    # With a margin, the test is for a drop beyond it: H1 mean < -0.005.
    rows_m = {r.prompt: r for r in per_prompt_comparisons(ref, cand, margin=0.005)}
    p_margin = rows_m["drop"].p_value
    assert p_margin is not None
    assert p_margin > 0.037090


def test_per_prompt_flags_a_clear_drop_and_zero_variance():
    ref = {"a": [0.30, 0.31, 0.32, 0.33], "b": [0.30, 0.30, 0.30, 0.30]}
    cand = {"a": [0.20, 0.215, 0.205, 0.23], "b": [0.30, 0.30, 0.30, 0.30]}
    rows = {r.prompt: r for r in per_prompt_comparisons(ref, cand)}
    assert rows["a"].flagged
    assert rows["b"].zero_variance
    assert rows["b"].p_value == 1.0
    assert not rows["b"].flagged
    json.dumps([r.to_dict() for r in rows.values()], allow_nan=False)


# --------------------------------------------------------------------------------------------
# describe, speedup, LPIPS and the two-axis verdict
# --------------------------------------------------------------------------------------------


def test_describe():
    # [1, 2, 3, 4]: mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; var 5/3
    got = describe([1.0, 2.0, 3.0, 4.0])
    assert (got.n, got.mean) == (4, 2.5)
    assert got.std == pytest.approx(math.sqrt(5 / 3))  # 1.2909944
    assert describe([0.3]) == Description(1, 0.3, None)
    assert describe([0.3]).to_dict() == {"n": 1, "mean": 0.3, "std": None}
    with pytest.raises(ValueError, match="empty"):
        describe([])
    with pytest.raises(ValueError, match="non-finite"):
        describe([0.3, float("nan")])


def test_speedup_from_the_study():
    # Part 1: BF16 7.55 s warm, NVFP4 5.50 s -> 7.55 / 5.50 = 1.3727 ("1.37x faster")
    assert speedup([7.55, 7.55], [5.50, 5.50]) == pytest.approx(1.3727, abs=1e-4)
    with pytest.raises(ValueError, match="positive"):
        speedup([1.0], [0.0])


@pytest.mark.parametrize(
    ("value", "band"),
    [
        (0.0, "visually indistinguishable"),
        (0.049, "visually indistinguishable"),
        (0.167, "minor detail variation"),  # study: FP8scaled
        (0.2886, "clearly different composition"),  # study: NVFP4
        (0.3069, "clearly different composition"),  # study: NVFP4+FP8e
        (0.45, "strongly different"),
        (0.6, "different concept"),
    ],
)
def test_lpips_band(value, band):
    assert lpips_band(value) == band


@pytest.mark.parametrize(
    ("lpips", "verdict", "expected"),
    [
        (0.167, PASS, "close and not worse"),  # FP8scaled in the study
        (0.2886, PASS, "different but not worse"),  # NVFP4 in the study
        (0.3069, FAIL, "worse"),
        (0.05, FAIL, "worse"),
        (0.3, INCONCLUSIVE, "inconclusive"),
        (0.3, INSUFFICIENT, "inconclusive"),
        (None, PASS, "not worse"),
        (0.2, PASS, "different but not worse"),  # the threshold belongs to "different"
    ],
)
def test_two_axis_verdict(lpips, verdict, expected):
    assert two_axis_verdict(lpips, verdict) == expected


def test_two_axis_verdict_threshold_and_validation():
    assert two_axis_verdict(0.15, PASS, close_threshold=0.1) == "different but not worse"
    with pytest.raises(ValueError, match="gate_verdict"):
        two_axis_verdict(0.1, "maybe")
    with pytest.raises(ValueError, match="lpips_mean"):
        two_axis_verdict(float("nan"), PASS)


def test_gate_result_is_frozen_and_json_ready():
    r = noninferiority_gate(_table(STUDY["BF16"]), _table(STUDY["NVFP4"]), margin=0.01)
    assert isinstance(r, GateResult)
    with pytest.raises(AttributeError):
        r.verdict = FAIL  # type: ignore[misc]
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert json.loads(text)["seeds_per_prompt"] == [1, 1]
    assert isinstance(d["notes"], list)


def test_bootstrap_is_reproducible():
    a = noninferiority_gate(_table(STUDY["BF16"]), _table(STUDY["NVFP4"]), margin=0.01)
    b = noninferiority_gate(_table(STUDY["BF16"]), _table(STUDY["NVFP4"]), margin=0.01)
    assert a.bootstrap_lower == b.bootstrap_lower
    assert a == b
