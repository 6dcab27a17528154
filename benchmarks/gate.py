"""The gate's error rates by Monte Carlo, with standard errors: what a run's verdict can promise.

    python benchmarks/gate.py                 # 50,000 runs per cell; about 2 minutes on 2 cores
    python benchmarks/gate.py --reps 4000     # a quick look

Data model (the study's variance prior, docs/statistics.md): the paired CLIPScore difference of
prompt p, seed s is ``mu + sd_between * b_p + sd_within * w_ps`` with sd_between 0.005,
sd_within 0.013, and b, w independent unit-variance noise, normal or Student t with 3 df
(heavy tails) scaled to unit variance. The gate sees the per-prompt means d_p. Margin
delta 0.01, one-sided alpha 0.05. For prompts {3, 6, 12, 30} x seeds {1, 3, 10} it prints:

- false pass (NON-INFERIOR) at a true drop of delta and of 2 delta (must be <= alpha);
- pass rate at a difference of 0 and of +delta/2, the plain t bound's pass rate at 0, and the
  gate minus the t bound on the same draws (paired, with its SE: the price of monotonicity);
- the per-case family-wise false alarm with no true drop: the chance that ANY candidate case of
  the run fails, for the scaled band (``checks.case_band``) and the fixed 0.04 band, at the
  study's image-level SD (0.014) and at 0.02 (the band's design limit; 3 candidate configs);
- for the sequential design (3 stages of 6 prompts x 3 or 1 seeds; the gate's calibrated T*
  boundaries with linear spending, and Pocock and O'Brien-Fleming spending for contrast): the
  false pass over all looks at a drop of delta and 2 delta, the pass rate at 0, how often stage 1
  decides, the mean candidate generations saved against running every stage, the fixed 18-prompt
  test's pass rate, and naive repeated looks for contrast.

Every rate is shown as ``rate ± Monte Carlo SE``. Vectorised with numpy; the gate's statistic is
the package's own (``stats._monotone.monotone_t``), so this measures the shipped rule.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_zimage_quality.checks import case_band
from pytest_zimage_quality.stats import DEFAULT_PRIOR, calibrated_design, critical_value
from pytest_zimage_quality.stats._monotone import monotone_t

ALPHA, DELTA = 0.05, 0.01
PROMPTS, SEEDS = (3, 6, 12, 30), (1, 3, 10)
SPENDINGS = ("linear", "pocock", "obrien-fleming")  # the gate's default first


def noise(rng: np.random.Generator, shape: tuple[int, ...], heavy: bool) -> np.ndarray:
    if heavy:
        return rng.standard_t(3, shape) / math.sqrt(3.0)
    return rng.standard_normal(shape)


def pairs(
    rng: np.random.Generator, reps: int, n: int, k: int, heavy: bool, sd_b: float, sd_w: float
) -> np.ndarray:
    """Per-(prompt, seed) paired differences with no true difference, shape (reps, n, k)."""
    return sd_b * noise(rng, (reps, n, 1), heavy) + sd_w * noise(rng, (reps, n, k), heavy)


def rate(hits: np.ndarray) -> str:
    p = float(np.mean(hits))
    return f"{p:.3f}±{math.sqrt(p * (1 - p) / hits.size):.3f}"


def paired(a: np.ndarray, b: np.ndarray) -> str:
    """P(a) - P(b) on the same draws, with the paired Monte Carlo SE."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    return f"{diff.mean():+.4f}±{diff.std(ddof=1) / math.sqrt(diff.size):.4f}"


def gate_cells(reps: int, rng: np.random.Generator) -> list[str]:
    prior = DEFAULT_PRIOR
    head = (
        f"{'noise':<6} {'n×k':>6}  {'false pass −δ':>13}  {'false pass −2δ':>14}  "
        f"{'pass at 0':>11}  {'pass +δ/2':>11}  {'t bound at 0':>12}  {'gate − t at 0':>15}"
    )
    lines = [head, "-" * len(head)]
    for heavy in (False, True):
        for n in PROMPTS:
            q = critical_value(n, ALPHA)
            tc = float(sps.t.ppf(1 - ALPHA, n - 1))
            for k in SEEDS:
                d0 = pairs(rng, reps, n, k, heavy, prior.sd_between, prior.sd_within).mean(axis=2)
                cells = []
                for mu in (-DELTA, -2 * DELTA, 0.0, DELTA / 2):
                    cells.append(rate(monotone_t(d0 + mu + DELTA) > q))
                sd = d0.std(axis=1, ddof=1)
                t_clear = d0.mean(axis=1) - tc * sd / math.sqrt(n) > -DELTA
                gate_clear = monotone_t(d0 + DELTA) > q
                lines.append(
                    f"{'t3' if heavy else 'normal':<6} {f'{n}×{k}':>6}  {cells[0]:>13}  "
                    f"{cells[1]:>14}  {cells[2]:>11}  {cells[3]:>11}  {rate(t_clear):>12}  "
                    f"{paired(gate_clear, t_clear):>15}"
                )
    return lines


def band_cells(reps: int, rng: np.random.Generator) -> list[str]:
    head = (
        f"{'noise':<6} {'image SD':>8} {'n×k×configs':>12}  {'band':>6}  "
        f"{'any case fails (scaled)':>23}  {'any case fails (fixed 0.04)':>27}"
    )
    lines = [head, "-" * len(head)]
    for heavy in (False, True):
        for sd_image in (DEFAULT_PRIOR.sd_image, 0.02):
            sd_b = DEFAULT_PRIOR.sd_between * sd_image / DEFAULT_PRIOR.sd_image
            sd_w = math.sqrt(sd_image**2 - sd_b**2)
            for n, k, configs in ((6, 3, 3), (12, 10, 1), (30, 10, 1), (30, 10, 3)):
                m = n * k * configs
                band = case_band(m).width
                worst = np.full(reps, np.inf)
                for _ in range(configs):  # independent configs against the same references
                    worst = np.minimum(
                        worst, pairs(rng, reps, n, k, heavy, sd_b, sd_w).min(axis=(1, 2))
                    )
                lines.append(
                    f"{'t3' if heavy else 'normal':<6} {sd_image:>8.4f} {f'{n}×{k}×{configs}':>12}"
                    f"  {band:>6.4f}  {rate(worst < -band):>23}  {rate(worst < -0.04):>27}"
                )
    return lines


def sequential_cells(reps: int, rng: np.random.Generator) -> list[str]:
    plan = (6, 12, 18)
    q_fixed = critical_value(plan[-1], ALPHA)
    tcs = [float(sps.t.ppf(1 - ALPHA, n - 1)) for n in plan]
    prior = DEFAULT_PRIOR
    designs = {name: calibrated_design(plan, ALPHA, name) for name in SPENDINGS}
    head = (
        f"{'spending':<14} {'noise':<6} {'n×k':>6} {'true Δ':>6}  {'NON-INFERIOR':>12}  "
        f"{'INFERIOR':>11}  {'stage 1 decides':>15}  {'generations saved':>17}  "
        f"{'fixed 18×k':>11}  {'naive 3 looks':>13}"
    )
    lines = [
        f"looks at {plan} prompts; T* critical values (calibrated, docs/statistics.md): "
        + "; ".join(
            f"{name} " + ", ".join(f"{q:.2f}" for q in d.critical_values)
            for name, d in designs.items()
        ),
        head,
        "-" * len(head),
    ]
    for k in (3, 1):
        for heavy in (False, True):
            for mu in (-DELTA, -2 * DELTA, 0.0):
                d = (
                    pairs(rng, reps, plan[-1], k, heavy, prior.sd_between, prior.sd_within).mean(
                        axis=2
                    )
                    + mu
                )
                stats_up = [monotone_t(d[:, :n] + DELTA) for n in plan]
                stats_down = [monotone_t(-(d[:, :n] + DELTA)) for n in plan]
                naive = np.zeros(reps, dtype=bool)
                for n, tc in zip(plan, tcs, strict=True):
                    x = d[:, :n] + DELTA
                    naive |= x.mean(axis=1) - tc * x.std(axis=1, ddof=1) / math.sqrt(n) > 0
                fixed = monotone_t(d + DELTA) > q_fixed
                for name, design in designs.items():
                    decided = np.zeros(reps, dtype=bool)
                    passed = np.zeros(reps, dtype=bool)
                    failed = np.zeros(reps, dtype=bool)
                    used = np.full(reps, float(plan[-1]))
                    first = np.zeros(reps, dtype=bool)
                    for i, (n, q) in enumerate(zip(plan, design.critical_values, strict=True)):
                        up = (stats_up[i] > q) & ~decided
                        down = (stats_down[i] > q) & ~decided & ~up
                        passed |= up
                        failed |= down
                        used[up | down] = n
                        decided |= up | down
                        if i == 0:
                            first = decided.copy()
                    saved = (plan[-1] - used) * k
                    lines.append(
                        f"{name:<14} {'t3' if heavy else 'normal':<6} {f'6×{k}':>6} "
                        f"{mu:>+6.3f}  {rate(passed):>12}  {rate(failed):>11}  "
                        f"{rate(first):>15}  {saved.mean():>8.1f} of {plan[-1] * k:<6}  "
                        f"{rate(fixed):>11}  {rate(naive):>13}"
                    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=50_000, help="runs per cell (default 50000)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    print(
        f"gate benchmark: δ = {DELTA}, α = {ALPHA}, prior sd_between {DEFAULT_PRIOR.sd_between}, "
        f"sd_within {DEFAULT_PRIOR.sd_within}; {args.reps} runs per cell, seed {args.seed}"
    )
    print("\nPer-config gate (NON-INFERIOR rate):")
    print("\n".join(gate_cells(args.reps, rng)))
    print("\nPer-case band, no true drop (candidate cases of one run):")
    print("\n".join(band_cells(args.reps, rng)))
    print("\nSequential stages, 3 stages of 6 prompts (candidate generations saved per config):")
    print("\n".join(sequential_cells(args.reps, rng)))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
