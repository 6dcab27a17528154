"""The baseline comparison's lines under the terminal summary: one per failing or changed
config, then the count of new and inherited failures. Formatting only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .ci_views import SPEED_MEMORY_HEADERS, VRAM_NOTE, speed_memory_rows

if TYPE_CHECKING:
    from ..baseline import Comparison
    from ..summary import RunSummary

__all__ = ["comparison_lines", "provenance_lines", "speed_memory_lines"]

Markup = dict[str, bool]


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def comparison_lines(comparison: Comparison | None, refused: str = "") -> list[tuple[str, Markup]]:
    """(line, markup) pairs; nothing without a baseline."""
    if refused:
        return [(f"zimage baseline REFUSED: {refused}", {"red": True, "bold": True})]
    if comparison is None:
        return []
    name = comparison.run_id or comparison.path
    lines: list[tuple[str, Markup]] = []
    for note in comparison.notes:
        lines.append((f"zimage baseline: {note}", {"yellow": True}))
    for change in comparison.configs:
        label = f" [{change.status}]" if change.status else ""
        tone: Markup = {"red": True} if change.status == "new" else {}
        lines.append(
            (
                f"zimage baseline: {change.label} {change.verdict_then or '—'} → "
                f"{change.verdict_now}, Δ {_num(change.mean_diff_then)} → "
                f"{_num(change.mean_diff_now)} (change {_num(change.change)}){label}",
                tone,
            )
        )
    counts = comparison.counts()
    tone = {"red": True, "bold": True} if counts["new"] else {"green": True}
    lines.append(
        (
            f"zimage baseline {name}: {counts['new']} new, {counts['inherited']} inherited, "
            f"{counts['no baseline']} without a baseline (failing configs and cases)",
            tone,
        )
    )
    return lines


def provenance_lines(summary: RunSummary | None) -> list[str]:
    """The run's lane, and a line when cached images from another lane were made again."""
    block = summary.provenance if summary is not None else None
    if not block:
        return []
    lanes = [lane for lane in block.get("lanes") or () if isinstance(lane, Mapping)]
    lines = [f"zimage lane: {lane.get('id')} ({lane.get('label')})" for lane in lanes]
    regenerated = list(block.get("regenerated_other_lane") or ())
    if regenerated:
        lines.append(
            f"zimage: {len(regenerated)} cached image(s) were made on another lane and were "
            "regenerated on this one (never paired across lanes):"
        )
        lines += [f"  {note}" for note in regenerated[:10]]
        if len(regenerated) > 10:
            lines.append(f"  ... and {len(regenerated) - 10} more (summary.json provenance)")
    return lines


def speed_memory_lines(summary: RunSummary | None) -> list[str]:
    """Per config, the peak VRAM and its change against the reference beside the speedup."""
    if summary is None or not summary.vram:
        return []
    rows = speed_memory_rows(summary)
    widths = [max(len(r[i]) for r in [list(SPEED_MEMORY_HEADERS), *rows]) for i in range(5)]
    lines = ["zimage speed and memory:"]
    for row in [list(SPEED_MEMORY_HEADERS), *rows]:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    lines.append(f"  ({VRAM_NOTE})")
    return lines
