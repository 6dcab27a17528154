"""report.html's view model: frozen dataclasses of display strings, and the formatters.

The Jinja2 template only lays these out (as pytest-mpl's ``summary/html.py`` does); :mod:`.html`
builds them from the typed run summary and the records.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .charts import Chart, Column

if TYPE_CHECKING:
    from ..stats import Description
    from .vocabulary import HtmlColumn

__all__ = [
    "DASH",
    "ConfigRow",
    "Fact",
    "GateView",
    "GridRow",
    "ImageCell",
    "PromptCellView",
    "PromptRow",
    "PromptSection",
    "ReportView",
    "SuiteView",
    "fmt",
    "fmt_mean_std",
    "fmt_p",
    "fmt_value",
    "redact",
]

DASH = "—"
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@\s:]*):[^/@\s]*@"
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def fmt(value: Any, digits: int = 4, *, signed: bool = False) -> str:
    """A number with ``digits`` decimals (``−`` as minus sign); anything else becomes "—"."""
    number = _number(value)
    if number is None:
        return DASH
    text = f"{number:+.{digits}f}" if signed else f"{number:.{digits}f}"
    return text.replace("-", "−")


def fmt_p(value: Any) -> str:
    number = _number(value)
    if number is None:
        return DASH
    if number < 1e-4:
        return "<0.0001"
    return f"{number:.4f}" if number < 0.01 else f"{number:.3f}"


def fmt_mean_std(desc: Description | None, digits: int = 4) -> str:
    if desc is None:
        return DASH
    mean = fmt(desc.mean, digits)
    if mean == DASH:
        return DASH
    std = fmt(desc.std, digits)
    return mean if std == DASH else f"{mean} ± {std}"


def fmt_value(value: Any) -> str:
    """Any JSON value as one readable line (options, environment)."""
    if value is None or value == "" or value == [] or value == {}:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={fmt_value(v)}" for k, v in value.items())
    return redact(str(value))


def redact(text: str) -> str:
    """Hide the password of ``scheme://user:password@host`` URLs."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def anchor_id(*parts: str) -> str:
    """An id attribute value: readable, unique per input, safe in a URL fragment."""
    text = "-".join(parts)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:40] or "x"
    return f"{slug}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:6]}"


def url_ref(relative: str) -> str:
    """A relative path as a URL reference (Unicode and '#', '?', '%' percent-encoded)."""
    return quote(relative, safe="/")


def delta_class(value: float | None, tolerance: float | None = None) -> str:
    number = _number(value)
    if number is None:
        return ""
    limit = _number(tolerance)
    if limit is not None and number < -limit:
        return "bad"
    return "neg" if number < 0 else "pos" if number > 0 else ""


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class GateView:
    passed: bool
    headline: str
    reason: str
    css: str
    failed: tuple[str, ...]
    inconclusive: tuple[str, ...]
    flagged: tuple[str, ...]
    incomplete: tuple[str, ...] = ()
    advisory: bool = False


@dataclass(frozen=True)
class ConfigRow:
    """One headline-table row."""

    key: str
    label: str
    role: str
    is_reference: bool
    n: str
    lpips: str
    clipscore: str
    delta: str
    delta_css: str
    lower_bound: str
    p_value: str
    power: str
    min_detectable_drop: str
    verdict: str
    verdict_css: str
    two_axis: str
    needs: str
    speed: str
    speed_detail: str
    confidence: str
    speedup: str
    notes: tuple[str, ...]
    expected_fail_prompts: tuple[str, ...]
    flagged_prompts: tuple[str, ...]


@dataclass(frozen=True)
class PromptCellView:
    """One per-prompt-table cell: mean CLIPScore of a (prompt, config) over its seeds."""

    clipscore: str
    n: str
    delta: str
    delta_css: str
    lpips: str
    p_adjusted: str
    flagged: bool
    expected_fail: bool


@dataclass(frozen=True)
class PromptRow:
    key: str
    text: str
    tags: tuple[str, ...]
    anchor: str
    cells: tuple[PromptCellView, ...]


@dataclass(frozen=True)
class ImageCell:
    """One image of the grid (or a placeholder when the case produced none)."""

    present: bool
    config_label: str
    seed: str
    thumb: str
    href: str
    thumb_width: int
    thumb_height: int
    alt: str
    clipscore: str
    lpips: str
    delta: str
    delta_css: str
    is_reference: bool
    outcome: str
    badge: str
    css: str
    expected_fail: str
    message: str
    cached: str
    title: str
    #: further metrics of this image (label, value), and what a metric read in it (OCR)
    metrics: tuple[Fact, ...] = ()
    readings: tuple[Fact, ...] = ()
    #: the server that made the image (shown under it when the run used several)
    server: str = ""


@dataclass(frozen=True)
class GridRow:
    seed: str
    cells: tuple[ImageCell, ...]


@dataclass(frozen=True)
class PromptSection:
    key: str
    text: str
    tags: tuple[str, ...]
    anchor: str
    columns: tuple[Column, ...]
    rows: tuple[GridRow, ...]
    n_images: int
    n_failed: int
    n_expected: int
    open: bool


@dataclass(frozen=True)
class SuiteView:
    name: str
    anchor: str
    file: str
    sha: str
    reference: str
    parameters: tuple[Fact, ...]
    legend: tuple[Fact, ...]
    counts: str
    confidence: str
    columns: tuple[Column, ...]
    configs: tuple[ConfigRow, ...]
    prompts: tuple[PromptRow, ...]
    sections: tuple[PromptSection, ...]
    clip_chart: Chart | None
    speed_chart: Chart | None
    #: one column per metric (all of them), a row per config; a chart per further metric
    #: report.html's headline columns (``vocabulary.html_columns``: the words live there)
    headline_columns: tuple[HtmlColumn, ...] = ()
    metric_headers: tuple[str, ...] = ()
    metric_rows: tuple[tuple[str, ...], ...] = ()
    metric_charts: tuple[Chart, ...] = ()
    #: each gated metric's decision per candidate config (suites gating on more than one)
    metric_gate_headers: tuple[str, ...] = ()
    metric_gate_rows: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class ReportView:
    title: str
    run_id: str
    created: str
    banners: tuple[str, ...]
    gate: GateView
    overview: tuple[Fact, ...]
    servers: tuple[tuple[Fact, ...], ...]
    scorers: tuple[Fact, ...]
    environment: tuple[Fact, ...]
    options: tuple[Fact, ...]
    suites: tuple[SuiteView, ...]
    n_cases: int
    counts: str
    #: the CI section (report/ci_html.py), already rendered; "" when there is none
    ci_section: str = ""
