"""Seeded Monte Carlo checks of the gate's guarantees (small; the full table: benchmarks/gate.py).

The gate's verdict is ``T*(d + margin) > q`` for NON-INFERIOR (``stats._monotone``), so the bulk
checks simulate per-prompt differences with numpy and apply that rule vectorised; one test checks
that the vectorised rule and the public gate agree on the same data.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pytest_zimage_quality.stats import (
    INFERIOR,
    NON_INFERIOR,
    critical_value,
    noninferiority_gate,
)
from pytest_zimage_quality.stats._monotone import monotone_t
from pytest_zimage_quality.stats._sequential import (
    calibrated_design,
    obrien_fleming_spending,
    sequential_design,
    sequential_gate,
)
from pytest_zimage_quality.stats._sequential_power import sequential_power

ALPHA, MARGIN = 0.05, 0.01


def _pass_rate(d: np.ndarray, alpha: float = ALPHA) -> tuple[float, float]:
    """NON-INFERIOR rate of rows of per-prompt differences d, and its Monte Carlo SE."""
    q = critical_value(d.shape[1], alpha)
    rate = float(np.mean(monotone_t(d + MARGIN) > q))
    return rate, math.sqrt(max(rate * (1 - rate), 1e-4) / d.shape[0])


def _noise(rng: np.random.Generator, shape: tuple[int, ...], heavy: bool) -> np.ndarray:
    """Unit-variance noise: normal, or Student t with 3 df scaled to SD 1 (heavy tails)."""
    if heavy:
        return rng.standard_t(3, shape) / math.sqrt(3.0)
    return rng.standard_normal(shape)


def test_vectorised_rule_matches_the_gate() -> None:
    rng = np.random.default_rng(1)
    for _ in range(25):
        n = int(rng.integers(5, 12))
        d = rng.normal(rng.uniform(-0.02, 0.01), rng.uniform(0.002, 0.02), n)
        ref = {f"p{i}": [0.3] for i in range(n)}
        cand = {f"p{i}": [0.3 + float(v)] for i, v in enumerate(d)}
        r = noninferiority_gate(ref, cand, margin=MARGIN, n_resamples=99)
        q = critical_value(n, ALPHA)
        x = (np.array(r.prompt_diffs) + MARGIN)[None, :]
        assert (r.decision == NON_INFERIOR) == bool(monotone_t(x)[0] > q)
        assert (r.decision == INFERIOR) == bool(monotone_t(-x)[0] > q)


@pytest.mark.parametrize("heavy", [False, True], ids=["normal", "t3"])
@pytest.mark.parametrize("n", [5, 6, 12, 30])
def test_false_pass_at_a_true_drop_of_delta(n: int, heavy: bool) -> None:
    rng = np.random.default_rng(100 + n + 1000 * heavy)
    d = -MARGIN + 0.009 * _noise(rng, (20_000, n), heavy)
    rate, se = _pass_rate(d)
    assert rate <= ALPHA + 3 * se


def test_false_pass_with_ragged_seeds_and_two_variance_levels() -> None:
    rng = np.random.default_rng(7)
    n, reps = 8, 20_000
    seeds = np.array([1, 2, 3, 5, 1, 2, 3, 5])
    between = rng.normal(0, 0.004, (reps, n))
    within = rng.normal(0, 0.015, (reps, n, 5))
    mask = np.arange(5)[None, :] < seeds[:, None]
    d = -MARGIN + between + (within * mask).sum(axis=2) / seeds
    rate, se = _pass_rate(d)
    assert rate <= ALPHA + 3 * se


def test_equivalent_config_at_6_by_3_passes_as_often_as_the_t_bound_clears() -> None:
    # Study prior: sd_prompt = sqrt(0.005^2 + 0.013^2 / 3) = 0.0090. The t bound alone clears
    # with probability P(nct(5, 0.01 sqrt(6) / 0.009) > t_c) = 0.753; the old verdict passed
    # about 27% of the time. No monotone level-alpha test can match the t test exactly (it is the
    # most powerful scale-invariant test); the monotone gate gives up about one point at 6 prompts.
    rng = np.random.default_rng(11)
    d = 0.0090185 * rng.standard_normal((40_000, 6))
    rate, se = _pass_rate(d)
    t_rate = float(sps.nct.sf(sps.t.ppf(0.95, 5), 5, 0.01 * math.sqrt(6) / 0.0090185))
    assert t_rate == pytest.approx(0.753, abs=1e-3)
    assert rate >= t_rate - 0.02 - 3 * se


def test_inferior_is_rare_when_nothing_changed() -> None:
    rng = np.random.default_rng(12)
    d = 0.009 * rng.standard_normal((20_000, 8))
    q = critical_value(8, ALPHA)
    inferior = float(np.mean(monotone_t(-(d + MARGIN)) > q))
    assert inferior < 0.001


# --------------------------------------------------------------------------------------------
# Sequential stages
# --------------------------------------------------------------------------------------------


def _sequential_pass_rate(d: np.ndarray, plan: tuple[int, ...]) -> tuple[float, float, float]:
    """NON-INFERIOR rate over all looks, its SE, and the mean prompts used (vectorised)."""
    design = calibrated_design(plan, ALPHA)
    decided = np.zeros(d.shape[0], dtype=bool)
    passed = np.zeros(d.shape[0], dtype=bool)
    used = np.full(d.shape[0], float(plan[-1]))
    for k, n_k in enumerate(plan):
        q = design.critical_values[k]
        x = d[:, :n_k] + MARGIN
        up = (monotone_t(x) > q) & ~decided
        down = (monotone_t(-x) > q) & ~decided & ~up
        passed |= up
        used[up | down] = n_k
        decided |= up | down
    rate = float(np.mean(passed))
    return rate, math.sqrt(max(rate * (1 - rate), 1e-4) / d.shape[0]), float(np.mean(used))


def test_sequential_boundaries_are_the_published_obrien_fleming_ones() -> None:
    # Two equally spaced looks, one-sided alpha 0.05: z = 2.538, 1.662 (Lan-DeMets OBF).
    two = sequential_design((0.5, 1.0), 0.05, "obrien-fleming")
    assert two.z_bounds == pytest.approx((2.538, 1.662), abs=2e-3)
    assert two.spent[-1] == pytest.approx(0.05)
    three = sequential_design((1 / 3, 2 / 3, 1.0), 0.05, "obrien-fleming")
    assert three.z_bounds == pytest.approx((3.200, 2.141, 1.695), abs=2e-3)
    assert obrien_fleming_spending(1.0, 0.05) == pytest.approx(0.05)


@pytest.mark.parametrize("heavy", [False, True], ids=["normal", "t3"])
def test_sequential_false_pass_over_all_looks_stays_at_alpha(heavy: bool) -> None:
    rng = np.random.default_rng(21 + heavy)
    d = -MARGIN + 0.009 * _noise(rng, (20_000, 18), heavy)
    rate, se, _ = _sequential_pass_rate(d, (6, 12, 18))
    assert rate <= ALPHA + 3 * se


def test_sequential_saves_prompts_on_a_clear_drop_and_agrees_with_the_gate() -> None:
    rng = np.random.default_rng(23)
    d = -3 * MARGIN + 0.009 * rng.standard_normal((5_000, 18))
    _, _, used = _sequential_pass_rate(d, (6, 12, 18))
    assert used < 14  # most clear drops stop INFERIOR at the second look
    one = sequential_gate(d[0], (6, 12, 18), margin=MARGIN)
    assert one.decision == INFERIOR
    assert one.prompts_saved == 18 - one.prompts_used
    partial = sequential_gate(d[0][:6], (6, 12, 18), margin=MARGIN)
    assert partial.looks[0].critical_value is not None  # a 6-prompt first look can decide
    assert partial.decision in (INFERIOR, None)
    assert partial.decision is None or partial.prompts_saved == 12
    undecided = sequential_gate(
        [0.0, -0.02, 0.01, -0.015, 0.005, -0.01], (6, 12, 18), margin=MARGIN
    )
    assert undecided.decision is None  # go on to stage 2
    assert undecided.stopped_at is None


def test_the_calibrated_design_spends_alpha_look_by_look() -> None:
    # The calibration's own sample crosses each look with exactly the spending's increment.
    design = calibrated_design((6, 12, 18), ALPHA)
    assert design.spending == "linear"
    assert design.spent == pytest.approx((ALPHA / 3, 2 * ALPHA / 3, ALPHA))
    assert all(math.isfinite(q) for q in design.critical_values)
    assert design.nominal_alpha[0] > 0.5**6  # a 6-prompt first stage can stop a config
    # O'Brien-Fleming spends 0.0007 at t = 1/3, below the 2^-6 a monotone verdict needs there
    obf = calibrated_design((6, 12, 18), ALPHA, "obrien-fleming")
    assert obf.critical_values[0] == math.inf
    assert obf.nominal_alpha[0] == 0.0


def test_stage_one_of_the_example_design_stops_most_clearly_fine_configs() -> None:
    # 6 x 3 per stage at the study's variance and no true drop: about half stop at stage 1
    rng = np.random.default_rng(31)
    d = 0.005 * rng.standard_normal((20_000, 18, 1)) + 0.013 * rng.standard_normal((20_000, 18, 3))
    x = d.mean(axis=2)[:, :6] + MARGIN
    design = calibrated_design((6, 12, 18), ALPHA)
    stopped = float(np.mean(monotone_t(x) > design.critical_values[0]))
    assert 0.35 < stopped < 0.55


def test_the_sequential_designs_planned_power_is_the_gates_pass_rate_at_no_drop() -> None:
    """sequential_power is what sequential_gate does: 1000 configs with no true drop, per-prompt
    SD 0.01, margin 0.006 (effect 0.6), looks at 6 and 12 prompts."""
    planned = sequential_power((6, 12), ALPHA, 0.6)
    rng = np.random.default_rng(20251128)
    runs = 1000
    passed = sum(
        sequential_gate(
            list(rng.normal(0.0, 0.01, 12)), [6, 12], margin=0.006, alpha=ALPHA
        ).decision
        == NON_INFERIOR
        for _ in range(runs)
    )
    se = math.sqrt(planned * (1 - planned) / runs)
    assert abs(passed / runs - planned) < 4 * se
    # the early look costs power: below one look at all 12 prompts, above one at 6
    alone = float(np.mean(monotone_t(np.random.default_rng(3).normal(0.6, 1, (1 << 15, 12)))
                          > critical_value(12, ALPHA)))  # fmt: skip
    assert sequential_power((6,), ALPHA, 0.6) < planned < alone
