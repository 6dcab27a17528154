"""The run summary's tables as rows of text, aligned by display width (wide and combining
characters counted as the terminal shows them): shared by the terminal summary and the
Markdown summary, so the two show the same rows."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .vocabulary import column, verdict_text

if TYPE_CHECKING:
    from ..stats import Description
    from ..summary import Speed, SuiteSummary

__all__ = [
    "display_width",
    "format_table",
    "headline_rows",
    "mean_sd_text",
    "number_text",
    "power_rows",
    "prompt_rows",
    "speed_text",
]


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK) characters take two."""
    return sum(
        2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1
        for ch in text
    )


def _pad(text: str, width: int, align: str) -> str:
    gap = max(0, width - display_width(text))
    return " " * gap + text if align == ">" else text + " " * gap


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], aligns: str) -> list[str]:
    """Lines of a table whose column widths fit the data (CJK-aware)."""
    widths = [display_width(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], display_width(cell))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(_pad(cell, widths[i], aligns[i]) for i, cell in enumerate(cells)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def number_text(value: float | None, digits: int = 4, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def mean_sd_text(desc: Description | None, digits: int) -> str:
    if desc is None:
        return "—"
    if desc.std is None:
        return f"{desc.mean:.{digits}f}"
    return f"{desc.mean:.{digits}f} ± {desc.std:.{digits}f}"


def speed_text(speed: Speed) -> str:
    if speed.median_seconds is None:
        return "—"
    factor = speed.speedup
    return f"{speed.median_seconds:.2f} s" + (f"  {factor:.2f}×" if factor is not None else "")


def headline_rows(suite: SuiteSummary) -> tuple[list[str], list[list[str]], list[str]]:
    """The study's headline table, with the gate's columns added; also each row's verdict."""
    ref_label = suite.reference.label
    keys = ("config", "n", "lpips", "clipscore", "delta", "lower_bound", "p_value", "power")
    headers = [column(key, ref=ref_label) for key in (*keys, "min_drop", "verdict", "speed")]
    rows, verdicts = [], []
    for config in suite.configs:
        gate = config.gate
        word = verdict_text(config)
        rows.append(
            [
                config.label,
                str(config.n_scored),
                "ref" if config.is_reference else mean_sd_text(config.lpips, 3),
                mean_sd_text(config.clipscore, 4),
                number_text(gate.mean_diff if gate else None, sign=True),
                number_text(gate.lower_bound if gate else None, sign=True),
                number_text(gate.p_value if gate else None, 4),
                number_text(suite.planned_power(config), 2),
                number_text(suite.planned_mdd(config), 4),
                word,
                speed_text(config.speed),
            ]
        )
        verdicts.append(config.decision)
    return headers, rows, verdicts


def prompt_rows(suite: SuiteSummary) -> tuple[list[str], list[list[str]]]:
    """The study's per-prompt table: mean CLIPScore per cell, Δ vs the reference, flags."""
    headers = ["prompt", *(c.label for c in suite.configs)]
    rows = []
    for prompt in suite.prompts:
        row = [prompt.key]
        for config in suite.configs:
            cell = prompt.cells.get(config.key)
            if cell is None:
                row.append("—")
                continue
            text = f"{cell.clipscore_mean:.4f}"
            if not cell.is_reference and cell.delta is not None:
                text += f" ({cell.delta:+.4f})"
            if cell.flagged:
                text += " *"
            if cell.expected_fail:
                text += " xf"
            row.append(text)
        rows.append(row)
    return headers, rows


def power_rows(suite: SuiteSummary) -> tuple[list[str], list[list[str]]]:
    """Per candidate config: the power planned from the prior, what would reach the target,
    and the observed minimum detectable drop (information only)."""
    headers = [
        "config",
        "prompts × seeds",
        "power at δ (planned)",
        "min drop (planned)",
        f"to reach 80% at δ = {suite.margin:g}",
        "observed MDD (information)",
    ]
    rows = []
    for config in suite.configs:
        gate = config.gate
        if gate is None:
            continue
        low, high = gate.seeds_per_prompt
        seeds = str(low) if low == high else f"{low}–{high}"
        needed = []
        if not gate.adequately_powered:
            if gate.prompts_needed:
                needed.append(f"{gate.prompts_needed} prompts")
            if gate.seeds_needed:
                needed.append(f"{gate.seeds_needed} seeds per prompt")
            elif gate.plan.power_seeds_unlimited < gate.plan.target:
                needed.append("no number of seeds is enough")
        rows.append(
            [
                config.label,
                f"{gate.n_prompts} × {seeds}",
                number_text(suite.planned_power(config), 2),
                number_text(suite.planned_mdd(config), 4),
                " or ".join(needed) or "reached",
                number_text(gate.observed_mdd, 4),
            ]
        )
    return headers, rows
