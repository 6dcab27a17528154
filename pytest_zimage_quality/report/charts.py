"""The report's two inline SVG charts, every coordinate computed here (the template only draws).

CLIPScore per config (a point per prompt, a bar per config) and LPIPS against speedup (a point
per candidate config, coloured by verdict). Pure: typed summary objects in, chart objects out.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..summary import ConfigSummary

__all__ = ["PALETTE", "VERDICT_COLOURS", "Chart", "clip_chart", "speed_chart"]

# Tableau 10: distinguishable, colour-blind-friendlier than the default rainbow.
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
VERDICT_COLOURS = {
    "non-inferior": "#2e7d32",
    "inferior": "#c62828",
    "inconclusive": "#ef8f00",
    "insufficient data": "#757575",
    "incomplete": "#757575",
    "reference": "#37474f",
}
_GREY = "#757575"


@dataclass(frozen=True)
class Column:
    """A config as the charts and tables see it."""

    key: str
    label: str
    is_reference: bool


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    colour: str
    title: str
    label: str = ""
    x_low: float | None = None
    x_high: float | None = None
    label_x: float = 0.0
    label_y: float = 0.0
    label_anchor: str = "start"


@dataclass(frozen=True)
class Segment:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str = ""
    label_x: float = 0.0
    label_y: float = 0.0
    label_anchor: str = "end"


@dataclass(frozen=True)
class LegendItem:
    colour: str
    label: str


@dataclass(frozen=True)
class Chart:
    """An inline SVG chart, every coordinate computed here (the template only draws)."""

    title: str
    x_label: str
    y_label: str
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    points: tuple[Point, ...]
    marks: tuple[Segment, ...]  # short solid bars (config means)
    guides: tuple[Segment, ...]  # dashed reference lines
    legend: tuple[LegendItem, ...]
    categorical_x: bool
    note: str = ""


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_label(value: float, span: float) -> str:
    digits = max(0, min(4, 1 - math.floor(math.log10(span / 5)) if span > 0 else 2))
    return f"{value:.{digits}f}".replace("-", "−")


_W, _H = 560, 340
_LEFT, _RIGHT, _TOP, _BOTTOM = 62.0, 540.0, 30.0, 290.0


def clip_chart(
    columns: Sequence[Column],
    prompt_keys: Sequence[str],
    means: Mapping[tuple[str, str], float],
    config_means: Mapping[str, float],
    reference_key: str,
    *,
    metric: str = "CLIPScore",
    digits: int = 4,
) -> Chart | None:
    """Per config: a point per prompt (its mean over seeds) and a bar at the config mean, of
    CLIPScore or of any other ``metric``."""
    values = list(means.values()) + list(config_means.values())
    if not values or not columns:
        return None
    low, high = min(values), max(values)
    pad = max((high - low) * 0.08, 0.005)
    low, high = low - pad, high + pad

    def y_of(value: float) -> float:
        return _BOTTOM - (value - low) / (high - low) * (_BOTTOM - _TOP)

    band = (_RIGHT - _LEFT) / len(columns)
    centres = {c.key: _LEFT + band * (i + 0.5) for i, c in enumerate(columns)}
    step = min(band * 0.6 / max(len(prompt_keys), 1), 12.0)
    colours = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(prompt_keys)}
    points = []
    for i, prompt in enumerate(prompt_keys):
        offset = (i - (len(prompt_keys) - 1) / 2) * step
        for column in columns:
            value = means.get((prompt, column.key))
            if value is None:
                continue
            points.append(
                Point(
                    x=round(centres[column.key] + offset, 1),
                    y=round(y_of(value), 1),
                    colour=colours[prompt],
                    title=f"{prompt} · {column.label}: mean {metric} {value:.{digits}f}",
                )
            )
    marks = tuple(
        Segment(
            round(centres[key] - band * 0.38, 1),
            round(y_of(value), 1),
            round(centres[key] + band * 0.38, 1),
            round(y_of(value), 1),
            f"{value:.{digits}f}",
        )
        for key, value in config_means.items()
        if key in centres
    )
    guides: tuple[Segment, ...] = ()
    if reference_key in config_means:
        y = round(y_of(config_means[reference_key]), 1)
        label = next((c.label for c in columns if c.key == reference_key), reference_key)
        text = f"dashed: reference ({label}) mean {config_means[reference_key]:.{digits}f}"
        guides = (Segment(_LEFT, y, _RIGHT, y, text, _RIGHT, _TOP - 6, "end"),)
    return Chart(
        title=f"{metric} per config (points: per-prompt means over seeds; bar: config mean)",
        x_label="config",
        y_label=metric,
        width=_W,
        height=_H,
        left=_LEFT,
        right=_RIGHT,
        top=_TOP,
        bottom=_BOTTOM,
        x_ticks=tuple(Tick(round(centres[c.key], 1), c.label) for c in columns),
        y_ticks=tuple(
            Tick(round(y_of(t), 1), _tick_label(t, high - low)) for t in _nice_ticks(low, high)
        ),
        points=tuple(points),
        marks=marks,
        guides=guides,
        legend=tuple(LegendItem(colours[p], p) for p in prompt_keys),
        categorical_x=True,
    )


def _place_labels(points: Sequence[Point]) -> tuple[Point, ...]:
    """Put each point's label beside it, flipped at the right edge, moved down past overlaps."""
    placed: list[tuple[float, float, float, float]] = []
    out = []
    for point in sorted(points, key=lambda p: (p.y, p.x)):
        width = 6.8 * len(point.label)
        if point.x + 9 + width > _RIGHT:
            anchor, x0, x1 = "end", point.x - 9 - width, point.x - 9
        else:
            anchor, x0, x1 = "start", point.x + 9, point.x + 9 + width
        y = point.y - 8
        for _ in range(len(points) + 1):
            if not any(
                x0 < b1 and b0 < x1 and y - 12 < c1 and c0 < y + 3 for b0, b1, c0, c1 in placed
            ):
                break
            y += 15
        placed.append((x0, x1, y - 12, y + 3))
        label_x = x0 if anchor == "start" else x1
        out.append(
            dataclasses.replace(
                point, label_x=round(label_x, 1), label_y=round(y, 1), label_anchor=anchor
            )
        )
    return tuple(out)


def speed_chart(configs: Sequence[ConfigSummary], close: float | None) -> Chart | None:
    """LPIPS against speedup, one point per candidate config with both (None: no such config)."""
    entries = []
    left_out = []
    for config in configs:
        if config.is_reference:
            continue
        lpips = _finite(config.lpips.mean if config.lpips else None)
        speedup = _finite(config.speed.speedup)
        if lpips is None or speedup is None:
            left_out.append(config.label)
            continue
        std = _finite(config.lpips.std if config.lpips else None) or 0.0
        entries.append((config.label, lpips, std, speedup, config.decision))
    if not entries:
        return None
    x_high = max(max(e[1] + e[2] for e in entries) * 1.15, (close or 0) * 1.25, 0.1)
    speeds = [e[3] for e in entries] + [1.0]
    y_low, y_high = min(speeds), max(speeds)
    pad = max((y_high - y_low) * 0.15, 0.1)
    y_low, y_high = max(0.0, y_low - pad), y_high + pad

    def x_of(value: float) -> float:
        return _LEFT + min(max(value, 0.0), x_high) / x_high * (_RIGHT - _LEFT)

    def y_of(value: float) -> float:
        return _BOTTOM - (value - y_low) / (y_high - y_low) * (_BOTTOM - _TOP)

    points = _place_labels(
        [
            Point(
                x=round(x_of(lp), 1),
                y=round(y_of(sp), 1),
                colour=VERDICT_COLOURS.get(verdict, _GREY),
                title=f"{label}: LPIPS {lp:.4f} ± {std:.4f}, speedup {sp:.2f}×, verdict {verdict}",
                label=f"{label} ({verdict})",
                x_low=round(x_of(lp - std), 1),
                x_high=round(x_of(lp + std), 1),
            )
            for label, lp, std, sp, verdict in entries
        ]
    )
    y_one = round(y_of(1.0), 1)
    guides = [Segment(_LEFT, y_one, _RIGHT, y_one, "reference speed", _RIGHT - 4, y_one - 4)]
    if close is not None and close < x_high:
        x = round(x_of(close), 1)
        guides.append(Segment(x, _TOP, x, _BOTTOM, f"LPIPS {close:g}", x + 4, _TOP + 12, "start"))
    verdicts = sorted({e[4] for e in entries})
    return Chart(
        title="LPIPS vs reference against speedup (one point per candidate config; bar: ± std)",
        x_label="LPIPS vs reference (mean)",
        y_label="speedup (×)",
        width=_W,
        height=_H,
        left=_LEFT,
        right=_RIGHT,
        top=_TOP,
        bottom=_BOTTOM,
        x_ticks=tuple(
            Tick(round(x_of(t), 1), _tick_label(t, x_high)) for t in _nice_ticks(0, x_high)
        ),
        y_ticks=tuple(
            Tick(round(y_of(t), 1), _tick_label(t, y_high - y_low))
            for t in _nice_ticks(y_low, y_high)
        ),
        points=points,
        marks=(),
        guides=tuple(guides),
        legend=tuple(LegendItem(VERDICT_COLOURS.get(v, _GREY), v) for v in verdicts),
        categorical_x=False,
        note=f"not plotted (no LPIPS or speed): {', '.join(left_out)}" if left_out else "",
    )
