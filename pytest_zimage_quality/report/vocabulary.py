"""The words both renderers use: verdict labels, column labels, the legend and the closing line.

One table each, read by the terminal summary and by report.html, so the two cannot drift
apart: change a label or a legend entry here and both outputs change together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..summary import ConfigSummary, ExitDecision, SuiteSummary

__all__ = [
    "COLUMNS",
    "HTML_COLUMNS",
    "NOT_ENFORCED",
    "HtmlColumn",
    "LegendEntry",
    "column",
    "gate_headline",
    "html_columns",
    "html_gate_headline",
    "legend",
    "verdict_label",
    "verdict_text",
    "verdict_tone",
]

#: How a config's decision is printed (``stats.DECISION_LABELS``, repeated here because this
#: module loads with the plugin and stats loads scipy; tests/test_report_terminal.py checks
#: they agree), plus the schema-1 verdict words of older summaries.
VERDICT_LABELS = {
    "non-inferior": "NON-INFERIOR",
    "inferior": "INFERIOR",
    "inconclusive": "INCONCLUSIVE",
    "insufficient data": "INSUFFICIENT DATA",
    "incomplete": "INCOMPLETE",
    "reference": "reference",
    "pass": "NON-INFERIOR",
    "fail": "INFERIOR",
    "no data": "INCOMPLETE",
}
#: Decisions that ask for attention (not shown non-inferior, not shown inferior either).
WARNING_VERDICTS = frozenset({"inconclusive", "insufficient data", "incomplete", "no data"})
PASSING_VERDICTS = frozenset({"non-inferior", "pass"})
FAILING_VERDICTS = frozenset({"inferior", "fail"})
#: What every output says of a gate that is shown but does not set the exit status.
NOT_ENFORCED = "the gate does not set the exit status; the per-case tests still do"


def verdict_label(verdict: str) -> str:
    return VERDICT_LABELS.get(verdict, verdict.upper())


def verdict_tone(verdict: str) -> str:
    """ "pass", "fail", "warn" or "" (the reference): the colour a decision is shown in."""
    if verdict in PASSING_VERDICTS:
        return "pass"
    if verdict in FAILING_VERDICTS:
        return "fail"
    return "warn" if verdict in WARNING_VERDICTS else ""


def verdict_text(config: ConfigSummary) -> str:
    """A config's verdict as printed: its label, "n/N prompts" when the gate lost prompts, the
    stage that decided it, and the two-axis reading."""
    word = verdict_label(config.decision)
    if config.is_reference:
        return word
    if config.missing_prompts:
        word += f" ({config.prompts_used}/{config.planned_prompts} prompts)"
    staged = config.stages
    if staged is not None and staged.decided_stage:
        word += f" @ stage {staged.decided_stage}/{staged.n_stages}"
    if config.two_axis and config.two_axis.lower() != verdict_label(config.decision).lower():
        word = f"{word}: {config.two_axis}"
    return word


#: The headline table's columns, by key ("{ref}" is the reference config's label).
COLUMNS = {
    "config": "config",
    "n": "n",
    "lpips": "LPIPS vs {ref}",
    "clipscore": "CLIPScore",
    "delta": "Δ mean",
    "lower_bound": "lower bound",
    "p_value": "p (H0: Δ ≤ −δ)",
    "power": "power (planned)",
    "min_drop": "min drop (planned)",
    "verdict": "verdict",
    "speed": "speed (median, ×)",
}


def column(key: str, *, ref: str = "reference") -> str:
    return COLUMNS[key].format(ref=ref)


@dataclass(frozen=True)
class HtmlColumn:
    """One headline-table column as report.html heads it: its title and a small second line."""

    key: str
    title: str
    note: str = ""


#: The headline table's columns in report.html, keyed and ordered as ``COLUMNS`` (the terminal's
#: labels) plus the page's own "speedup"; ``{confidence}`` is " 95%" when the suite has one.
HTML_COLUMNS = (
    HtmlColumn("config", "Config"),
    HtmlColumn("n", "n (prompts×seeds)"),
    HtmlColumn("lpips", "LPIPS vs reference", "mean ± std"),
    HtmlColumn("clipscore", "CLIPScore", "mean ± std"),
    HtmlColumn("delta", "Δ CLIPScore", "mean"),
    HtmlColumn("lower_bound", "Δ lower bound", "one-sided{confidence}"),
    HtmlColumn("p_value", "p"),
    HtmlColumn("power", "power", "planned"),
    HtmlColumn("min_drop", "min detectable drop", "planned"),
    HtmlColumn("verdict", "Verdict"),
    HtmlColumn("speed", "Speed", "median / image"),
    HtmlColumn("speedup", "Speedup"),
)


def html_columns(*, confidence: str = "") -> tuple[HtmlColumn, ...]:
    """report.html's headline columns, the lower bound's note naming ``confidence``."""
    shown = f" {confidence}" if confidence else ""
    return tuple(HtmlColumn(c.key, c.title, c.note.format(confidence=shown)) for c in HTML_COLUMNS)


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
    delta = f"−δ = −{suite.margin:g}"
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
            "lower bound / upper bound",
            (
                f"one-sided {level} monotone confidence bounds of Δ (the t test's monotone "
                "closure: a better score never worsens the verdict);",
                f"NON-INFERIOR needs lower > {delta}, INFERIOR upper < {delta}, else "
                "INCONCLUSIVE; INSUFFICIENT DATA below the prompts a verdict needs (5 at "
                "α = 0.05).",
            ),
        ),
        LegendEntry(
            "INCOMPLETE",
            (
                "no usable pair, a staged config left undecided, or a run that stopped early "
                "(-x, Ctrl-C, SIGTERM): never a pass.",
            ),
        ),
        LegendEntry(
            "p",
            (
                "one-sided p of H0 Δ ≤ −δ for that test (floor 2^-n for n prompts).",
                "Companions (never the verdict): Wilcoxon signed-rank asks about the pseudo-median "
                "(the typical prompt), the prompt bootstrap bound about the mean without the "
                "normal model; a disagreement is a note.",
            ),
        ),
        LegendEntry(
            "power (planned)",
            (
                "chance of NON-INFERIOR when the config has no true drop, from the variance prior "
                "(summary.json gate.plan.prior), not from this run's data; it never grades the "
                "verdict. For a staged suite it is the sequential design's (every look, "
                "summary.json plan.sequential_power).",
            ),
        ),
        LegendEntry(
            "min drop (planned)",
            (
                "the margin cleared with 80% probability at no true drop, from the same prior "
                "(for a staged suite, through the sequential design's looks: summary.json "
                "plan.sequential_mdd); observed MDD (gate.observed_mdd): the same from this run's "
                "observed spread — information only.",
            ),
        ),
        LegendEntry(
            "Per-prompt flags",
            (f"one-sided paired t across seeds, {suite.per_prompt_correction}; descriptive only.",),
        ),
        LegendEntry(
            "Two axes",
            (
                f"{_closeness(suite)} = close to {ref}, else different; NON-INFERIOR on "
                f"{'CLIPScore' if suite.gate_metric == 'clipscore' else suite.gate_metric} = "
                "not worse.",
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


def _closeness(suite: SuiteSummary) -> str:
    """``LPIPS < 0.2``: the suite's distance metric and where closeness ends."""
    axis = suite.distance
    if axis is None or axis.threshold is None:
        return f"LPIPS < {suite.lpips_close:g}"
    return axis.describe()


def gate_headline(exit_: ExitDecision) -> tuple[str, str]:
    """The run's closing verdict and its tone ("pass", "fail" or "unknown").

    Never PASSED for a run that stopped early or a config without a verdict; a gate shown
    but not enforced (ADVISORY, random weights) says so and what it would have done.
    """
    if exit_.stopped_early:
        return (
            f"zimage gate: INCOMPLETE — the run stopped early ({exit_.stopped_early}); no "
            "config has a final verdict",
            "fail",
        )
    if not exit_.gate_ran:
        return (
            "zimage gate: NO VERDICT — no candidate config was judged "
            "(see the errors above, or select candidate configs)",
            "unknown",
        )
    would = "PASSED" if exit_.gate_passed else f"FAILED ({exit_.reason})"
    if exit_.advisory:
        return f"zimage gate: ADVISORY — would have {would}; {NOT_ENFORCED}", "unknown"
    if not exit_.gate_applied:
        return (
            f"zimage gate: NOT APPLIED (random weights) — would have {would}; {NOT_ENFORCED}",
            "unknown",
        )
    if exit_.gate_passed:
        return "zimage gate: PASSED", "pass"
    return f"zimage gate: FAILED — {exit_.reason}", "fail"


def html_gate_headline(exit_: ExitDecision) -> tuple[str, str]:
    """``gate_headline`` as report.html heads its gate box: "GATE PASSED", "GATE FAILED — …"."""
    headline, tone = gate_headline(exit_)
    return "GATE " + headline.removeprefix("zimage gate: "), tone
