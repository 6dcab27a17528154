"""Property tests: the gate's verdict is monotone in every candidate score.

Raising any candidate CLIPScore can never worsen a verdict, and lowering one can never improve it
(issue: the verdict comes from monotone bounds alone, never from power).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_zimage_quality.stats import (
    INCONCLUSIVE,
    INFERIOR,
    NON_INFERIOR,
    noninferiority_gate,
)

RANK = {INFERIOR: 0, INCONCLUSIVE: 1, NON_INFERIOR: 2}
MARGIN = 0.01


@st.composite
def runs(draw: st.DrawFn) -> tuple[dict[str, list[float]], dict[str, list[float]], str, int, float]:
    n = draw(st.integers(5, 9))
    seeds = draw(st.integers(1, 3))
    centre = draw(st.floats(-0.02, 0.01))
    spread = draw(st.sampled_from([0.0005, 0.003, 0.01, 0.03]))
    score = st.floats(-1.0, 1.0)
    ref = {f"p{i}": [0.3] * seeds for i in range(n)}
    cand = {f"p{i}": [0.3 + centre + spread * draw(score) for _ in range(seeds)] for i in range(n)}
    prompt = f"p{draw(st.integers(0, n - 1))}"
    seed = draw(st.integers(0, seeds - 1))
    step = draw(st.sampled_from([1e-4, 0.002, 0.01, 0.05, 0.3]))
    return ref, cand, prompt, seed, step


def _rank(ref: dict[str, list[float]], cand: dict[str, list[float]]) -> int:
    return RANK[noninferiority_gate(ref, cand, margin=MARGIN, n_resamples=19).decision]


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(runs())
def test_raising_a_score_never_worsens_and_lowering_never_improves(
    run: tuple[dict[str, list[float]], dict[str, list[float]], str, int, float],
) -> None:
    ref, cand, prompt, seed, step = run
    base = _rank(ref, cand)
    up = {p: list(v) for p, v in cand.items()}
    up[prompt][seed] += step
    down = {p: list(v) for p, v in cand.items()}
    down[prompt][seed] -= step
    assert _rank(ref, up) >= base
    assert _rank(ref, down) <= base


def test_the_t_bound_alone_would_not_be_monotone() -> None:
    # Why the gate does not use the plain t bound: five prompts barely above -margin and one
    # prompt improving. Raising that prompt widens s faster than it lifts the mean.
    ref = {f"p{i}": [0.3] for i in range(6)}
    cand = {f"p{i}": [0.3 - 0.006] for i in range(5)} | {"p5": [0.3 + 0.004]}
    before = noninferiority_gate(ref, cand, margin=MARGIN, n_resamples=19)
    cand["p5"] = [0.3 + 0.06]
    after = noninferiority_gate(ref, cand, margin=MARGIN, n_resamples=19)
    assert before.t_lower_bound is not None
    assert after.t_lower_bound is not None
    assert before.t_lower_bound > -MARGIN > after.t_lower_bound
    assert before.decision == after.decision == NON_INFERIOR
