"""Literal-number tests of the pure statistics package (hand-checked arithmetic in comments)."""

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
    DEFAULT_PRIOR,
    FAIL,
    INCONCLUSIVE,
    INFERIOR,
    INSUFFICIENT,
    NON_INFERIOR,
    PASS,
    Description,
    GateResult,
    VariancePrior,
    critical_value,
    decide,
    describe,
    gate_exit,
    holm_adjust,
    lpips_band,
    min_prompts,
    monotone_bounds,
    noninferiority_gate,
    observed_mdd,
    per_prompt_comparisons,
    plan_power,
    speedup,
    two_axis_verdict,
)
from pytest_zimage_quality.stats._monotone import monotone_t, t_bounds
from pytest_zimage_quality.stats._power import _power, ncp_for_power

# --------------------------------------------------------------------------------------------
# The study (seed article): per-prompt CLIPScore means over 3 seeds, the seed-42 images, and
# the headline means. The seed-42 values are the "CLIPScore: BF16 ... / NVFP4+FP8e ..." lines
# under each prompt's image grid.
# --------------------------------------------------------------------------------------------

PROMPTS = ("photo_woman", "photo_machine", "anime", "text_render", "chinese", "abstract")
STUDY = {
    "BF16": (0.3403, 0.3273, 0.3187, 0.3628, 0.2642, 0.3932),
    "FP8scaled": (0.3404, 0.3354, 0.3173, 0.3656, 0.2626, 0.3926),
    "NVFP4": (0.3383, 0.3292, 0.3130, 0.3642, 0.2658, 0.4030),
    "NVFP4+FP8e": (0.3426, 0.3433, 0.3174, 0.3623, 0.2731, 0.3938),
}
SEED42 = {
    "BF16": (0.334, 0.332, 0.307, 0.348, 0.260, 0.408),
    "FP8scaled": (0.332, 0.329, 0.318, 0.353, 0.261, 0.406),
    "NVFP4": (0.319, 0.336, 0.312, 0.350, 0.264, 0.390),
    "NVFP4+FP8e": (0.337, 0.348, 0.299, 0.351, 0.266, 0.384),
}
HEADLINE = {"BF16": 0.3344, "FP8scaled": 0.3356, "NVFP4": 0.3356, "NVFP4+FP8e": 0.3388}
CANDIDATES = ("FP8scaled", "NVFP4", "NVFP4+FP8e")


def _table(values: Sequence[float]) -> dict[str, list[float]]:
    """Per-prompt means as one-'seed' tables (the gate's d_p are exactly these differences)."""
    return {p: [v] for p, v in zip(PROMPTS, values, strict=True)}


@pytest.mark.parametrize("config", list(STUDY))
def test_study_per_prompt_means_reproduce_headline(config):
    # BF16: (0.3403 + 0.3273 + 0.3187 + 0.3628 + 0.2642 + 0.3932) / 6 = 2.0065 / 6 = 0.334417
    # Both tables are rounded to 4 decimals and the design is balanced (3 seeds per cell), so the
    # mean of the per-prompt means must match the headline within half a unit in the last place.
    got = describe(STUDY[config])
    assert got.n == 6
    assert abs(got.mean - HEADLINE[config]) <= 0.5e-4 + 1e-12


@pytest.mark.parametrize(
    ("config", "t_lower"),
    [
        # FP8scaled: d = [0.0001, 0.0081, -0.0014, 0.0028, -0.0016, -0.0006], mean 0.0012333,
        # sd 0.0037206, se 0.0015189, bound 0.0012333 - 2.015048 * 0.0015189 = -0.0018274.
        ("FP8scaled", -0.0018274),
        # NVFP4: d = [-0.0020, 0.0019, -0.0057, 0.0014, 0.0016, 0.0098], mean 0.0011667,
        # sd 0.0051477, se 0.0021015, bound 0.0011667 - 2.015048 * 0.0021015 = -0.0030680.
        ("NVFP4", -0.0030680),
        # NVFP4+FP8e: d = [0.0023, 0.0160, -0.0013, -0.0005, 0.0089, 0.0006], mean 0.0043333,
        # sd 0.0067843, se 0.0027697, bound 0.0043333 - 2.015048 * 0.0027697 = -0.0012477.
        ("NVFP4+FP8e", -0.0012477),
    ],
)
def test_study_candidates_are_non_inferior(config, t_lower):
    # Issue item 7: at delta 0.01, alpha 0.05 all three study candidates are NON-INFERIOR.
    r = noninferiority_gate(
        _table(STUDY["BF16"]), _table(STUDY[config]), margin=0.01, config=config
    )
    assert r.t_lower_bound == pytest.approx(t_lower, abs=1e-7)
    assert r.decision == NON_INFERIOR
    assert r.verdict == PASS
    assert r.passed
    # The monotone bound the verdict rests on clears -delta too, and is never below the smallest
    # per-prompt difference (a constant at that level fits under the data).
    assert r.lower_bound is not None
    assert min(r.prompt_diffs) <= r.lower_bound
    assert r.lower_bound > -0.01
    assert r.upper_bound is not None
    assert r.upper_bound > r.lower_bound
    # Every d_p + delta > 0, so the monotone statistic is infinite and p is its floor 2^-6.
    assert r.p_value == pytest.approx(1 / 64)
    json.dumps(r.to_dict(), allow_nan=False)


def test_study_photo_machine_gain_no_longer_costs_the_verdict():
    # The complaint: NVFP4+FP8e's +0.016 on photo_machine widens the t interval.
    # The monotone bound gives that gain back instead: the bound is higher than t's.
    r = noninferiority_gate(_table(STUDY["BF16"]), _table(STUDY["NVFP4+FP8e"]), margin=0.01)
    assert r.t_lower_bound is not None
    assert r.lower_bound is not None
    assert r.lower_bound > r.t_lower_bound
    # Raising photo_machine further never lowers the bound (it does lower the t bound).
    raised = list(STUDY["NVFP4+FP8e"])
    raised[1] += 0.05
    r2 = noninferiority_gate(_table(STUDY["BF16"]), _table(raised), margin=0.01)
    assert r2.lower_bound is not None
    assert r2.t_lower_bound is not None
    assert r2.lower_bound >= r.lower_bound - 1e-15  # equal: the gain is clipped either way
    assert r2.t_lower_bound < r.t_lower_bound
    assert r2.decision == NON_INFERIOR


def test_default_prior_is_derived_from_the_study():
    # sd_within: each seed-42 paired difference minus its prompt's 3-seed mean difference has
    # variance sigma_w^2 (1 - 1/3) (the seed is one of the three in the mean); pooled over the 18
    # (prompt, candidate) cells: mean(e^2) / (2/3) = sigma_w^2.
    ref42, refm = np.array(SEED42["BF16"]), np.array(STUDY["BF16"])
    e = np.concatenate(
        [(np.array(SEED42[c]) - ref42) - (np.array(STUDY[c]) - refm) for c in CANDIDATES]
    )
    sd_within = math.sqrt(float(np.mean(e**2)) / (2 / 3))
    assert sd_within == pytest.approx(0.0130, abs=5e-4)
    assert DEFAULT_PRIOR.sd_within == round(sd_within, 3)
    # sd_between: the SD of the per-prompt mean differences, pooled over the candidates (15 df),
    # counted wholly as between-prompt spread (cautious: seeds cannot average it away).
    var = [np.var(np.array(STUDY[c]) - refm, ddof=1) for c in CANDIDATES]
    pooled = math.sqrt(float(np.mean(var)))
    assert pooled == pytest.approx(0.00537, abs=5e-5)
    assert DEFAULT_PRIOR.sd_between == round(pooled, 3)
    # Image-level paired SD the per-case band sees: sqrt(0.005^2 + 0.013^2) = 0.013928.
    assert DEFAULT_PRIOR.sd_image == pytest.approx(0.013928, abs=1e-6)


# --------------------------------------------------------------------------------------------
# The verdict rule and the monotone bounds
# --------------------------------------------------------------------------------------------


def test_decide_from_the_bounds_alone():
    assert decide(-0.009, 0.01, 0.01) == NON_INFERIOR
    assert decide(-0.03, -0.011, 0.01) == INFERIOR
    assert decide(-0.02, 0.0, 0.01) == INCONCLUSIVE
    assert decide(-0.01, -0.01, 0.01) == INCONCLUSIVE  # on the margin: neither shown
    assert decide(None, None, 0.01) == INSUFFICIENT


def test_min_prompts_is_where_2_to_the_minus_n_drops_below_alpha():
    # 2^-4 = 0.0625 >= 0.05 > 2^-5 = 0.03125; 2^-6 = 0.0156 >= 0.01 > 2^-7.
    assert min_prompts(0.05) == 5
    assert min_prompts(0.01) == 7
    assert critical_value(4, 0.05) == math.inf
    assert math.isfinite(critical_value(5, 0.05))


@pytest.mark.parametrize("n", [5, 6, 12, 30])
def test_critical_value_is_at_least_t_and_close_to_it_from_12_prompts(n):
    tc = sps.t.ppf(0.95, n - 1)
    q = critical_value(n, 0.05)
    assert q >= tc
    if n >= 12:
        assert q - tc < 0.03
    # n = 6: 2.16 vs 2.015 (the extra width buys monotonicity; see docs/statistics.md).
    if n == 6:
        assert q == pytest.approx(2.16, abs=0.02)


def test_monotone_t_matches_a_dense_search_over_clip_levels():
    rng = np.random.default_rng(4)
    for n in (2, 3, 6, 9):
        x = rng.normal(0.3, 1.0, (200, n))
        got = monotone_t(x)
        xs = np.sort(x, axis=1)
        levels = np.linspace(0, 1, 401)
        best = np.full(200, -np.inf)
        for f in levels:
            c = xs[:, 0] + (xs[:, -1] - xs[:, 0]) * f
            y = np.minimum(x, c[:, None])
            sd = y.std(axis=1, ddof=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                t = np.where(sd > 1e-12, math.sqrt(n) * y.mean(axis=1) / sd, -np.inf)
            best = np.maximum(best, t)
        finite = np.isfinite(got)
        # Every row with all values > 0 is infinite; the rest match the search (never below it).
        assert np.array_equal(~finite, np.all(x > 0, axis=1))
        assert np.all(got[finite] >= best[finite] - 1e-9 * np.maximum(1.0, np.abs(best[finite])))
        assert np.allclose(got[finite], best[finite], rtol=2e-3, atol=2e-3)
        # And never below the plain t statistic.
        plain = math.sqrt(n) * x.mean(axis=1) / x.std(axis=1, ddof=1)
        assert np.all(got >= plain - 1e-9 * np.maximum(1.0, np.abs(plain)))


def test_monotone_bounds_of_a_constant_are_the_constant():
    d = np.full(6, -0.004)
    low, up = monotone_bounds(d, 0.05)
    assert low == pytest.approx(-0.004)
    assert up == pytest.approx(-0.004)
    assert monotone_bounds(np.zeros(4), 0.05) == (None, None)  # 4 < min_prompts(0.05)


def test_t_bounds_by_hand():
    # d = [0.01, 0.02, 0.03]: mean 0.02, se 0.01/sqrt(3); t_{0.95,2} = 2.919986
    low, up = t_bounds(np.array([0.01, 0.02, 0.03]), 0.05)
    assert low == pytest.approx(0.02 - 2.919986 * 0.01 / math.sqrt(3), abs=1e-8)
    assert up == pytest.approx(0.02 + 2.919986 * 0.01 / math.sqrt(3), abs=1e-8)


# --------------------------------------------------------------------------------------------
# Zero variance, tiny n, ragged seeds
# --------------------------------------------------------------------------------------------


def test_zero_variance_identical_images():
    scores = {p: [0.31, 0.33, 0.35] for p in "abcdef"}
    r = noninferiority_gate(scores, scores, margin=0.01)
    assert r.zero_variance
    assert r.mean_diff == 0.0
    assert r.sd_diff == 0.0
    assert r.lower_bound == 0.0
    assert r.decision == NON_INFERIOR
    assert r.observed_mdd is None  # no usable spread: not a misleading 0
    assert r.power < 1.0  # planned from the prior, never "power 1" from zero spread
    assert r.notes[0].startswith("zero variance")
    json.dumps(r.to_dict(), allow_nan=False)


def test_zero_variance_constant_shift_below_margin_is_inferior():
    ref = {p: [0.31 + i / 100, 0.33] for i, p in enumerate("abcdef")}
    # subtracting 0.02 is not exact in binary: the d_p differ in the last bits, which must not
    # reach scipy (it would warn of catastrophic cancellation) and must count as zero variance.
    cand = {p: [v - 0.02 for v in vs] for p, vs in ref.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.zero_variance
    assert r.upper_bound == pytest.approx(-0.02, abs=1e-12)
    assert r.decision == INFERIOR
    assert r.verdict == FAIL


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_too_few_prompts_are_insufficient_data(n):
    ref = {f"p{i}": [0.30, 0.31] for i in range(n)}
    cand = {f"p{i}": [0.30 + i / 1000, 0.32] for i in range(n)}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.decision == INSUFFICIENT
    # schema-1 ``verdict`` says the same: the classical t figures are for reference only
    assert r.verdict == INSUFFICIENT
    assert not r.passed
    if n >= 2:
        assert r.t_lower_bound is not None
    assert r.lower_bound is None
    assert r.upper_bound is None
    assert r.notes[0].startswith("insufficient data")
    json.dumps(r.to_dict(), allow_nan=False)


def test_two_prompts_with_zero_spread_are_insufficient_not_power_1():
    scores = {"a": [0.3], "b": [0.31]}
    r = noninferiority_gate(scores, scores, margin=0.01)
    assert r.decision == INSUFFICIENT
    assert r.power == 0.0  # two prompts cannot give a verdict at alpha 0.05
    assert r.min_detectable_drop is None
    assert r.observed_mdd is None


def test_clear_drop_is_inferior():
    ref = {f"p{i}": [0.30, 0.32] for i in range(8)}
    cand = {f"p{i}": [0.27 + i / 2000, 0.29] for i in range(8)}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.upper_bound is not None
    assert r.upper_bound < -0.01
    assert r.decision == INFERIOR


def test_ragged_seeds():
    # a: diffs [0.01] (k=1); b: [0.00, 0.02] (k=2, mean 0.01); c: [0.02, 0.03, 0.04] (mean 0.03)
    # pooled within-prompt SS = (0.01^2 + 0.01^2) + (0.01^2 + 0 + 0.01^2) = 4e-4 over 3 df
    #   -> sd_within = sqrt(1.3333e-4) = 0.0115470.
    ref = {"a": [0.30], "b": [0.30, 0.30], "c": [0.30, 0.30, 0.30]}
    cand = {"a": [0.31], "b": [0.30, 0.32], "c": [0.32, 0.33, 0.34]}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.seeds_per_prompt == (1, 3)
    assert r.n_pairs == 6
    assert r.prompt_diffs == pytest.approx((0.01, 0.01, 0.03), abs=1e-12)
    assert r.sd_within == pytest.approx(0.0115470, abs=1e-7)
    # harmonic mean of (1, 2, 3) = 1.636364; sd_diff^2 = 1.3333e-4; sigma_w^2 / k_h = 8.1481e-5;
    # sd_between = sqrt(5.1852e-5) = 0.0072008
    assert r.sd_between == pytest.approx(0.0072008, abs=1e-7)
    assert any("seeds per prompt vary" in n for n in r.notes)


def test_wilcoxon_drops_differences_equal_to_minus_margin():
    # d = [-0.01, 0, 0, 0.01, 0.02]; d + 0.01 = [0 (to rounding), 0.01, 0.01, 0.02, 0.03]
    # The zero is dropped: 4 values with ranks 1.5, 1.5, 3, 4 -> W+ = 10 (all positive), and
    # exact enumeration of 2^5 sign flips of the full vector gives p = 2/32 = 0.0625.
    ref = {p: [0.30] for p in "abcde"}
    cand = {"a": [0.29], "b": [0.30], "c": [0.30], "d": [0.31], "e": [0.32]}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.wilcoxon_statistic == 10.0
    assert r.wilcoxon_p == pytest.approx(0.0625)
    assert not r.wilcoxon_can_reject
    assert any("with 4 prompts (1 equal to -margin, dropped)" in n for n in r.notes)


def test_disagreement_note_names_the_question_each_test_answers():
    # Five prompts barely move, one collapses: the mean is dragged down, the typical prompt not.
    ref = {f"p{i}": [0.30] for i in range(12)}
    cand = {f"p{i}": [0.30 + 0.001 * (i % 3)] for i in range(11)} | {"p11": [0.10]}
    r = noninferiority_gate(ref, cand, margin=0.01)
    assert r.decision != NON_INFERIOR
    assert any("pseudo-median" in n for n in r.notes)


# --------------------------------------------------------------------------------------------
# Power planned before the run
# --------------------------------------------------------------------------------------------


def test_power_matches_independent_integration():
    # Power = P((Z + ncp) / sqrt(X / df) > t_c), Z ~ N(0, 1), X ~ chi2(df): integrate over X.
    n, sd, margin, alpha = 8, 0.006, 0.01, 0.05
    df, tc, ncp = n - 1, sps.t.ppf(0.95, n - 1), margin * math.sqrt(n) / sd

    def integrand(x):
        return sps.chi2.pdf(x, df) * sps.norm.sf(tc * math.sqrt(x / df) - ncp)

    expected, _ = integrate.quad(integrand, 0, np.inf)
    assert _power(sd, n, margin, alpha) == pytest.approx(expected, abs=1e-8)
    lam = ncp_for_power(n, alpha, 0.8)
    assert _power(sd, n, lam * sd / math.sqrt(n), alpha) == pytest.approx(0.8, abs=1e-9)


def test_plan_for_the_example_suite():
    # 6 prompts x 3 seeds at the study prior: sd_prompt = sqrt(0.005^2 + 0.013^2 / 3) = 0.0090185
    # ncp = 0.01 sqrt(6) / 0.0090185 = 2.7160; power = P(nct(5, 2.716) > 2.015) = 0.7529.
    plan = plan_power(DEFAULT_PRIOR, 6, 3, margin=0.01)
    assert plan.sd_prompt == pytest.approx(0.0090185, abs=1e-7)
    assert plan.power == pytest.approx(0.7529, abs=1e-4)
    assert not plan.adequately_powered
    assert plan.prompts_needed == 7
    assert plan.seeds_needed == 4
    assert plan.min_detectable_drop is not None
    assert plan.min_detectable_drop > 0.01
    assert any("7 prompts or 4 seeds" in n for n in plan.notes)
    assert plan_power(DEFAULT_PRIOR, 7, 3, margin=0.01).power >= 0.8
    json.dumps(plan.to_dict(), allow_nan=False)


def test_no_number_of_seeds_is_enough_when_prompts_differ():
    # sd_between 0.01 at 5 prompts: even infinitely many seeds leave ncp = 0.01 sqrt(5) / 0.01
    # = 2.236 against t_c(4) = 2.132: power about 0.5 < 0.8.
    prior = VariancePrior(sd_between=0.01, sd_within=0.02)
    plan = plan_power(prior, 5, 3, margin=0.01)
    assert plan.power_seeds_unlimited < 0.8
    assert plan.seeds_needed is None
    assert any("no number of seeds is enough" in n for n in plan.notes)
    assert plan.prompts_needed is not None
    assert plan_power(prior, plan.prompts_needed, 3, margin=0.01).power >= 0.8


def test_plan_below_the_fewest_prompts_says_so():
    plan = plan_power(DEFAULT_PRIOR, 3, 10, margin=0.01)
    assert plan.power == 0.0
    assert plan.min_detectable_drop is None
    assert plan.seeds_needed is None
    assert any("at least 5" in n for n in plan.notes)


def test_prior_validation_and_from_observed():
    with pytest.raises(ValueError, match="no spread"):
        VariancePrior(0.0, 0.0)
    with pytest.raises(ValueError, match="sd_between"):
        VariancePrior(-1.0, 0.01)
    # sd_diff 0.01 over 4 seeds with sd_within 0.012: between = sqrt(1e-4 - 1.44e-4 / 4) = 0.008
    prior = VariancePrior.from_observed(0.01, 0.012, 4, source="previous run")
    assert prior.sd_between == pytest.approx(0.008)
    assert prior.source == "previous run"


def test_observed_mdd_is_information_and_none_without_spread():
    # ncp_0.8(df 5) = 2.904582; 2.904582 * 0.006 / sqrt(6) = 0.0071148
    assert observed_mdd(0.006, 6, 0.05) == pytest.approx(0.0071148, abs=1e-6)
    assert observed_mdd(0.0, 6, 0.05) is None
    assert observed_mdd(None, 6, 0.05) is None


# --------------------------------------------------------------------------------------------
# Exit decision
# --------------------------------------------------------------------------------------------


def test_every_verdict_but_non_inferior_fails_the_run():
    ok = gate_exit({"a": NON_INFERIOR, "b": NON_INFERIOR})
    assert ok.gate_passed
    assert not ok.fails_run
    for other in (INFERIOR, INCONCLUSIVE, INSUFFICIENT, "incomplete", "fail", "inconclusive"):
        e = gate_exit({"a": NON_INFERIOR, "b": other})
        assert not e.gate_passed
        assert e.fails_run
        assert e.not_shown == ("b",)
        assert "non-inferiority not shown for b" in e.reason
    nothing = gate_exit({})
    assert not nothing.gate_passed
    assert nothing.fails_run


def test_advisory_mode_shows_but_never_sets_the_exit_status():
    e = gate_exit({"a": INFERIOR}, advisory=True)
    assert not e.gate_passed
    assert not e.fails_run
    assert e.reason.startswith("ADVISORY")
    assert e.to_dict()["fails_run"] is False
    with pytest.raises(ValueError, match="unknown gate decisions"):
        gate_exit({"a": "passed"})


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
