"""The words both renderers use: verdict labels, column labels, the legend and the closing line.

One table each, read by the terminal summary and by report.html, so the two cannot drift
apart: change a label or a legend entry here and both outputs change together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..summary import ExitDecision, SuiteSummary

__all__ = [
    "COLUMNS",
    "LegendEntry",
    "column",
    "gate_headline",
    "legend",
    "verdict_label",
]

#: How a config's verdict is printed (anything not listed is printed as it is).
VERDICT_LABELS = {
    "pass": "PASS",
    "fail": "FAIL",
    "inconclusive": "INCONCLUSIVE",
    "insufficient data": "NO DATA",
    "no data": "NO DATA",
    "reference": "reference",
}
#: Verdicts that ask for attention without being a failure.
WARNING_VERDICTS = frozenset({"inconclusive", "insufficient data", "no data"})


def verdict_label(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, verdict)


#: The headline table's columns, by key ("{ref}" is the reference config's label).
COLUMNS = {
    "config": "config",
    "n": "n",
    "lpips": "LPIPS vs {ref}",
    "clipscore": "CLIPScore",
    "delta": "Δ mean",
    "lower_bound": "lower bound",
    "p_value": "p (H0: Δ ≤ −δ)",
    "power": "power",
    "min_drop": "min drop",
    "verdict": "verdict",
    "speed": "speed (median, ×)",
}


def column(key: str, *, ref: str = "reference") -> str:
    return COLUMNS[key].format(ref=ref)


@dataclass(frozen=True)
class LegendEntry:
    """One term of the legend; ``lines`` break where the terminal breaks them."""

    term: str
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.lines)


def legend(suite: SuiteSummary) -> tuple[LegendEntry, ...]:
    """What every printed figure means, with this suite's parameters filled in."""
    ref = suite.reference.label
    level = f"{(1 - suite.alpha) * 100:g}%"
    return (
        LegendEntry(
            "CLIPScore",
            (
                "raw cosine of open_clip image and prompt embeddings (the study's scale, ~0.33); "
                "mean ± std over cases.",
            ),
        ),
        LegendEntry(
            "Δ mean",
            (
                f"mean over prompts of (candidate − {ref}) CLIPScore, seeds averaged within a "
                "prompt (the prompt is the unit).",
            ),
        ),
        LegendEntry(
            "lower bound",
            (
                f"one-sided {level} lower confidence bound of Δ (paired t-test, df = prompts − 1); "
                f"PASS needs it > −δ = {-suite.margin:g}.",
            ),
        ),
        LegendEntry(
            "p",
            (
                "one-sided p-value of H0 Δ ≤ −δ. A Wilcoxon signed-rank test and a prompt-cluster "
                "bootstrap bound are in summary.json;",
                "a disagreement between them is printed as a note.",
            ),
        ),
        LegendEntry(
            "power",
            (
                "chance to PASS a config with no true drop; min drop: smallest margin this run "
                "clears with 80% power.",
                "A pass without 80% power is INCONCLUSIVE, not 'no regression'.",
            ),
        ),
        LegendEntry(
            "Per-prompt flags",
            (f"one-sided paired t across seeds, {suite.per_prompt_correction}; descriptive only.",),
        ),
        LegendEntry(
            "Two axes",
            (
                f"LPIPS < {suite.lpips_close:g} = close to {ref}, else different; CLIPScore gate "
                "PASS = not worse.",
            ),
        ),
        LegendEntry(
            "speed",
            (
                "median server seconds per image (model loads excluded by the median), "
                f"× = speedup vs {ref}.",
            ),
        ),
    )


def gate_headline(exit_: ExitDecision) -> tuple[str, str]:
    """The run's closing verdict and its tone ("pass", "fail" or "unknown")."""
    if not exit_.gate_ran:
        return (
            "zimage gate: NO VERDICT — no candidate case was scored against its reference "
            "(see the errors above, or select candidate configs)",
            "unknown",
        )
    if not exit_.gate_applied:
        would = "PASSED" if exit_.gate_passed else "FAILED"
        return (
            f"zimage gate: NOT APPLIED (random weights; with these numbers it would have {would}) "
            "— the exit status reflects the per-case tests only",
            "unknown",
        )
    if exit_.gate_passed:
        return "zimage gate: PASSED", "pass"
    return f"zimage gate: FAILED — {exit_.reason}", "fail"
