"""Monte-Carlo checks of the gate's calibration and of the honesty of its power figures.

The gate's decision depends only on the per-prompt mean differences through their mean and SD, so
most checks simulate those in bulk with numpy and apply the gate's rule vectorised (built from the
same helpers the gate uses); ``test_vectorised_rule_matches_the_gate`` ties that rule to
``noninferiority_gate`` itself, sample by sample. RNG seeds are fixed, so nothing here is flaky;
tolerances are three binomial standard errors of the Monte-Carlo estimate.

What is checked (``docs/statistics.md``, "Honest power"):

- calibration: with a true mean drop of exactly the margin, the gate passes at most alpha of the
  time (the t-test is exact here, so also about alpha);
- the printed power is a one-sided ``sd_confidence`` lower confidence bound on the true power: it
  is at or below the truth in that share of runs, and on average below the real pass rate;
- runs that call themselves adequately powered pass at least as often as the power they print;
- at ``prompts_needed`` (and ``seeds_needed``), a rerun with no true difference returns "pass" at
  least ``power`` of the time and at least as often as the power it prints;
- at the minimum detectable drop, the bound clears the margin with the target probability.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import optimize
from scipy import stats as sps

from pytest_zimage_quality.stats import (
    PASS,
    _mdd,
    _power,
    _rerun_pass_probability,
    _sd_factor,
    noninferiority_gate,
)

ALPHA = 0.05
TARGET = 0.8
CONF = 0.8
DELTA = 0.01
REPS = 20_000


def _se(p: float, reps: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-4) / reps)


def _rule(d: np.ndarray, margin: float = DELTA) -> dict[str, Any]:
    """The gate's decision for each row of ``d`` (reps x n per-prompt mean differences)."""
    n = d.shape[1]
    mean = d.mean(axis=1)
    sd = d.std(axis=1, ddof=1)
    lower = mean - sps.t.ppf(1 - ALPHA, n - 1) * sd / math.sqrt(n)
    passed = lower > -margin
    sd_plan = _sd_factor(n, CONF) * sd
    power = _power(sd_plan, n, margin, ALPHA)
    adequate = power >= TARGET
    return {
        "mean": mean,
        "lower": lower,
        "passed": passed,
        "power": power,
        "mdd": _mdd(sd_plan, n, ALPHA, TARGET),
        "adequate": adequate,
        "verdict_pass": passed & adequate,
    }


def _sigma_for_power(n: int, true_power: float, margin: float = DELTA) -> float:
    return float(
        optimize.brentq(lambda s: _power(s, n, margin, ALPHA) - true_power, 1e-6, 1.0, xtol=1e-12)
    )


def _two_level(
    rng: np.random.Generator, mu: float, n: int, k: int, sd_between: float, sd_within: float
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Paired CLIPScores: prompt difficulty, a per-prompt config effect and per-seed noise."""
    ref: dict[str, list[float]] = {}
    cand: dict[str, list[float]] = {}
    for i in range(n):
        base = 0.33 + rng.normal(0, 0.04) + rng.normal(0, 0.02, k)
        effect = mu + rng.normal(0, sd_between)
        ref[f"p{i}"] = base.tolist()
        cand[f"p{i}"] = (base + effect + rng.normal(0, sd_within, k)).tolist()
    return ref, cand


def test_vectorised_rule_matches_the_gate() -> None:
    rng = np.random.default_rng(20240601)
    results = []
    for n, mu in [(4, -DELTA), (4, 0.0), (7, -DELTA), (7, 0.0), (12, 0.0)]:
        for _ in range(25):
            ref, cand = _two_level(rng, mu, n, 3, 0.004, 0.006)
            gate = noninferiority_gate(ref, cand, margin=DELTA, n_resamples=99)
            d = np.array([[np.mean(np.subtract(cand[p], ref[p])) for p in ref]])
            rule = _rule(d)
            assert gate.lower_bound == pytest.approx(rule["lower"][0], abs=1e-12)
            assert gate.passed == rule["passed"][0]
            assert gate.power == pytest.approx(rule["power"][0], rel=1e-9)
            assert gate.min_detectable_drop == pytest.approx(rule["mdd"][0], rel=1e-9)
            assert gate.adequately_powered == rule["adequate"][0]
            assert (gate.verdict == PASS) == rule["verdict_pass"][0]
            results.append(gate)
    # The gate itself, 50 runs at a true drop of exactly the margin: rarely passes.
    at_margin = [r.passed for r in results[:25] + results[50:75]]
    assert sum(at_margin) <= 6  # alpha * 50 = 2.5 expected; P(>= 7 | p = 0.05) < 0.004


@pytest.mark.parametrize("n", [3, 5, 8, 15, 40])
def test_calibration_at_the_margin(n: int) -> None:
    rng = np.random.default_rng(1000 + n)
    sigma = 0.007
    rule = _rule(rng.normal(-DELTA, sigma, (REPS, n)))
    rate = float(rule["passed"].mean())
    se = _se(ALPHA, REPS)
    assert rate <= ALPHA + 3 * se
    assert rate >= ALPHA - 3 * se  # exact, not merely conservative
    assert float(rule["verdict_pass"].mean()) <= rate
    # A drop larger than the margin passes even more rarely.
    worse = _rule(rng.normal(-1.5 * DELTA, sigma, (REPS, n)))
    assert float(worse["passed"].mean()) <= ALPHA + 3 * se


def test_calibration_with_ragged_seeds_and_two_variance_levels() -> None:
    # d_p = b_p + mean of k_p seed errors, k_p = 1..5: unequal variances across prompts.
    rng = np.random.default_rng(77)
    n = 6
    k = np.array([1, 2, 3, 4, 5, 3])
    b = rng.normal(-DELTA, 0.003, (REPS, n))
    e = np.stack([rng.normal(0, 0.02, (REPS, kk)).mean(axis=1) for kk in k], axis=1)
    rule = _rule(b + e)
    assert float(rule["passed"].mean()) <= ALPHA + 3 * _se(ALPHA, REPS)


@pytest.mark.parametrize("n", [4, 8, 20])
@pytest.mark.parametrize("true_power", [0.5, 0.8, 0.95])
def test_printed_power_is_a_lower_confidence_bound(n: int, true_power: float) -> None:
    rng = np.random.default_rng(int(n * 100 + true_power * 100))
    sigma = _sigma_for_power(n, true_power)
    rule = _rule(rng.normal(0.0, sigma, (REPS, n)))
    pass_rate = float(rule["passed"].mean())
    se = _se(pass_rate, REPS)
    assert pass_rate == pytest.approx(true_power, abs=3 * se)  # the nct power is exact
    # printed power <= true power in sd_confidence of runs (exactly: c * s >= sigma)
    share = float((rule["power"] <= true_power).mean())
    assert share == pytest.approx(CONF, abs=3 * _se(CONF, REPS))
    # on average the printed power is below the real pass rate
    assert float(rule["power"].mean()) <= pass_rate + 3 * se


@pytest.mark.parametrize(
    ("n", "true_power"), [(6, 0.8), (6, 0.95), (10, 0.9), (20, 0.8), (20, 0.95), (40, 0.9)]
)
def test_adequate_runs_pass_as_often_as_they_claim(n: int, true_power: float) -> None:
    rng = np.random.default_rng(n * 7 + int(true_power * 1000))
    sigma = _sigma_for_power(n, true_power)
    rule = _rule(rng.normal(0.0, sigma, (REPS, n)))
    adequate = rule["adequate"]
    m = int(adequate.sum())
    assert m >= 1000
    pass_rate = float(rule["verdict_pass"][adequate].mean())
    claimed = float(rule["power"][adequate].mean())
    assert pass_rate >= claimed - 3 * _se(claimed, m)


@pytest.mark.parametrize("pilot_seed", [11, 12, 13])
def test_prompts_needed_delivers_a_pass_on_rerun(pilot_seed: int) -> None:
    # A study-sized pilot (6 prompts x 3 seeds) says how many prompts a rerun needs.
    rng = np.random.default_rng(pilot_seed)
    ref, cand = _two_level(rng, 0.0, 6, 3, 0.004, 0.008)
    pilot = noninferiority_gate(ref, cand, margin=DELTA, n_resamples=99)
    n_star = pilot.prompts_needed
    assert n_star is not None
    assert pilot.sd_planning is not None
    assert pilot.sd_diff is not None
    # The statement covers any spread up to sd_planning (the worst case) and below it.
    for sigma in (pilot.sd_planning, pilot.sd_diff):
        rule = _rule(rng.normal(0.0, sigma, (REPS, n_star)))
        verdict_rate = float(rule["verdict_pass"].mean())
        printed = float(rule["power"].mean())
        assert verdict_rate >= TARGET - 3 * _se(TARGET, REPS)
        assert verdict_rate >= printed - 3 * _se(printed, REPS)
        assert float(rule["passed"].mean()) >= printed


@pytest.mark.parametrize("n", [5, 12, 30])
def test_min_detectable_drop(n: int) -> None:
    rng = np.random.default_rng(300 + n)
    sigma = 0.008
    true_mdd = _mdd(sigma, n, ALPHA, TARGET)
    # With the margin set to the MDD at the true spread, the bound clears it 80% of the time.
    rule = _rule(rng.normal(0.0, sigma, (REPS, n)), margin=true_mdd)
    assert float(rule["passed"].mean()) == pytest.approx(TARGET, abs=3 * _se(TARGET, REPS))
    # The printed MDD (at the SD's upper bound) is at least the true one in CONF of runs...
    share = float((rule["mdd"] >= true_mdd).mean())
    assert share == pytest.approx(CONF, abs=3 * _se(CONF, REPS))
    # ...and at its median printed value the bound clears the margin more often than 80%.
    median_mdd = float(np.median(rule["mdd"]))
    again = _rule(rng.normal(0.0, sigma, (REPS, n)), margin=median_mdd)
    assert float(again["passed"].mean()) >= TARGET


def test_seeds_needed_delivers_a_pass_on_rerun() -> None:
    # Seed noise dominates: more seeds per prompt can shrink the spread of the d_p enough.
    rng = np.random.default_rng(4242)
    n, k = 12, 3
    ref, cand = _two_level(rng, 0.0, n, k, 0.001, 0.03)
    pilot = noninferiority_gate(ref, cand, margin=DELTA, n_resamples=99)
    k_star = pilot.seeds_needed
    assert k_star is not None
    assert k_star > k
    assert pilot.sd_planning is not None
    assert pilot.sd_diff is not None
    assert pilot.sd_between is not None
    assert pilot.sd_within is not None
    # Rerun at k_star seeds with the planning spreads (both components scaled to the SD bound).
    scale = pilot.sd_planning / pilot.sd_diff
    sd_b, sd_w = scale * pilot.sd_between, scale * pilot.sd_within
    d = rng.normal(0.0, sd_b, (REPS, n)) + rng.normal(0.0, sd_w, (REPS, n, k_star)).mean(axis=2)
    rule = _rule(d)
    rate = float(rule["verdict_pass"].mean())
    assert rate >= TARGET - 3 * _se(TARGET, REPS)
    assert rate >= float(rule["power"].mean()) - 3 * _se(TARGET, REPS)


@pytest.mark.parametrize(("n", "lam"), [(4, 9.0), (8, 5.0), (15, 4.0), (30, 3.0)])
def test_rerun_integrals_match_simulation(n: int, lam: float) -> None:
    rng = np.random.default_rng(n)
    sigma = DELTA * math.sqrt(n) / lam
    rule = _rule(rng.normal(0.0, sigma, (REPS, n)))
    p_pass, e_power = _rerun_pass_probability(lam, n, ALPHA, TARGET, CONF)
    sim_pass = float(rule["verdict_pass"].mean())
    assert p_pass == pytest.approx(sim_pass, abs=3 * _se(sim_pass, REPS) + 1e-3)
    assert e_power == pytest.approx(float(rule["power"].mean()), abs=0.01)
