"""report.html's CI section: the run's verdict (errors apart from failures), each config's
change since the baseline, speed and memory, the noise floor, and with a history directory
a chart of each config's Δ and verdict across the stored runs (inline SVG)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .ci_views import SPEED_MEMORY_HEADERS, VRAM_NOTE, noise_floor_text, speed_memory_rows

if TYPE_CHECKING:
    import jinja2

    from ..baseline import HistoryPoint
    from ..summary import RunSummary

__all__ = ["history_charts", "render_ci_section"]

_TEMPLATE = "ci_section.html.j2"
_COLOURS = {"pass": "#27ae60", "non-inferior": "#27ae60", "fail": "#c0392b", "inferior": "#c0392b"}
_W, _H, _PAD = 420, 150, 28


def _num(value: Any, fmt: str = "+.4f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "—"


@dataclass(frozen=True)
class HistoryPointView:
    x: float
    y: float
    colour: str
    css: str
    run: str
    verdict: str
    delta: str


@dataclass(frozen=True)
class HistoryChart:
    name: str
    width: int
    height: int
    left: float
    right: float
    zero_y: float
    margin_y: float | None
    polyline: str
    points: tuple[HistoryPointView, ...]
    low: str
    high: str


def history_charts(
    series: Mapping[tuple[str, str], Sequence[HistoryPoint]], margins: Mapping[str, float]
) -> list[HistoryChart]:
    """One chart per (suite, config): Δ per stored run, oldest first, coloured by verdict."""
    charts = []
    for (suite, config), points in series.items():
        values = [p.mean_diff for p in points if p.mean_diff is not None]
        values = [v for v in values if math.isfinite(v)]
        if not values:
            continue
        margin = margins.get(suite)
        span = [*values, 0.0, *([-margin] if margin is not None else [])]
        low, high = min(span), max(span)
        if high - low < 1e-9:
            low, high = low - 0.01, high + 0.01
        step = (_W - 2 * _PAD) / max(1, len(points) - 1)

        def y_of(v: float, low: float = low, high: float = high) -> float:
            return round(_H - _PAD - (v - low) / (high - low) * (_H - 2 * _PAD), 1)

        views = []
        for i, p in enumerate(points):
            if p.mean_diff is None or not math.isfinite(p.mean_diff):
                continue
            verdict = p.verdict or "no data"
            views.append(
                HistoryPointView(
                    x=round(_PAD + i * step, 1),
                    y=y_of(p.mean_diff),
                    colour=_COLOURS.get(verdict.lower(), "#e67e22"),
                    css=verdict.lower().replace(" ", "-"),
                    run=p.run_id,
                    verdict=verdict,
                    delta=_num(p.mean_diff),
                )
            )
        charts.append(
            HistoryChart(
                name=f"{suite}/{config}",
                width=_W,
                height=_H,
                left=_PAD,
                right=_W - _PAD,
                zero_y=y_of(0.0),
                margin_y=y_of(-margin) if margin is not None else None,
                polyline=" ".join(f"{v.x},{v.y}" for v in views),
                points=tuple(views),
                low=_num(low),
                high=_num(high),
            )
        )
    return charts


def _baseline_rows(block: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for c in block.get("configs") or ():
        rows.append(
            [
                str(c.get("label") or c.get("config")),
                str(c.get("verdict_then") or "not in baseline"),
                str(c.get("verdict_now") or "—"),
                _num(c.get("mean_diff_then")),
                _num(c.get("mean_diff_now")),
                _num(c.get("change")),
                str(c.get("status") or "—"),
            ]
        )
    return rows


def render_ci_section(
    env: jinja2.Environment,
    summary: RunSummary,
    *,
    history: Mapping[tuple[str, str], Sequence[HistoryPoint]] | None = None,
    history_notes: Sequence[str] = (),
) -> str:
    """The section's HTML ("" when the run has nothing CI-specific to show)."""
    verdicts = summary.verdicts or {}
    baseline = summary.baseline or {}
    memory = speed_memory_rows(summary) if summary.vram else []
    charts = history_charts(history or {}, {s.name: s.margin for s in summary.suites})
    counts = verdicts.get("counts") or {}
    verdict_line = ""
    if counts.get("error"):
        kinds = list((verdicts.get("error_kinds") or {}).values())
        verdict_line = (
            f"{counts['error']} case(s) could not be generated or scored "
            f"({kinds.count('infrastructure')} infrastructure, {kinds.count('setup')} setup): "
            f"errors, not quality failures; {counts.get('failed', 0)} failed on quality."
        )
    ci = {
        "verdict_line": verdict_line,
        "verdict_css": "failed" if verdicts.get("verdict") == "failed" else "error",
        "baseline_rows": _baseline_rows(baseline),
        "baseline_run": str(baseline.get("run_id") or ""),
        "baseline_refused": str(baseline.get("refused") or ""),
        "memory_headers": SPEED_MEMORY_HEADERS,
        "memory_rows": memory,
        "memory_note": VRAM_NOTE,
        "noise_floor": noise_floor_text(summary),
        "history": charts,
        "history_notes": list(history_notes),
    }
    shown = ("verdict_line", "baseline_rows", "baseline_refused", "memory_rows", "noise_floor")
    if not any(ci[k] for k in shown) and not charts:
        return ""
    return env.get_template(_TEMPLATE).render(ci=ci)
