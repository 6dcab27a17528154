"""The self-contained HTML report of one run: ``report.html`` in the report directory.

View-model classes (plain frozen dataclasses of display strings and numbers) are built from the
run summary (the dict written to ``summary.json``) and the per-case records; a Jinja2 template
(``templates/report.html.j2``, autoescaped) only lays them out, as pytest-mpl's
``summary/html.py`` does. Nothing here computes a statistic: the numbers come from the summary,
so the terminal tables, ``summary.json`` and the page cannot disagree.

The page opens from disk with no server and no network: inline CSS, inline SVG charts, no
script. Images are referenced relatively (``images/...`` and ``thumbs/...``), so the report
directory can be moved or zipped as a CI artifact. Thumbnails (JPEG, about 256 px) are made
once per image content under ``thumbs/<sha16>.jpg`` and loaded lazily, so a 1,000-case report
stays light.

Entry point: :func:`write_html_report`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import jinja2

    from ..artifacts import ReportDir
    from ..records import CaseRecord

__all__ = ["THUMB_SIZE", "build_view", "make_thumbnail", "write_html_report"]

#: Longest side of a thumbnail, in pixels.
THUMB_SIZE = 256
DASH = "—"
_TEMPLATE = "report.html.j2"
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
    "pass": "#2e7d32",
    "fail": "#c62828",
    "inconclusive": "#ef8f00",
    "insufficient data": "#757575",
    "no data": "#757575",
    "reference": "#37474f",
}
_OUTCOME_BADGES = {
    "failed": ("FAILED", "failed"),
    "error": ("ERROR", "failed"),
    "xfailed": ("XFAIL", "expected"),
    "xpassed": ("XPASS", "expected"),
    "skipped": ("SKIPPED", "skipped"),
}
# Open every per-prompt section when the whole report has at most this many images.
_OPEN_SECTIONS_UP_TO = 240
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@\s:]*):[^/@\s]*@"
)


# ---------------------------------------------------------------------------------------------
# formatting helpers (pure)
# ---------------------------------------------------------------------------------------------


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


def fmt_mean_std(desc: Any, digits: int = 4) -> str:
    if not isinstance(desc, Mapping):
        return DASH
    mean = fmt(desc.get("mean"), digits)
    if mean == DASH:
        return DASH
    std = fmt(desc.get("std"), digits)
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


def _get(mapping: Any, *keys: str) -> Any:
    """``mapping[k1][k2]...`` or None when any level is missing or not a mapping."""
    for key in keys:
        if not isinstance(mapping, Mapping):
            return None
        mapping = mapping.get(key)
    return mapping


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else []


def _str(value: Any, default: str = DASH) -> str:
    return str(value) if value not in (None, "") else default


def _anchor(*parts: str) -> str:
    """An id attribute value: readable, unique per input, safe in a URL fragment."""
    text = "-".join(parts)
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:40] or "x"
    return f"{slug}-{hashlib.sha1(text.encode('utf-8')).hexdigest()[:6]}"


def _href(relative: str) -> str:
    """A relative path as a URL reference (Unicode and '#', '?', '%' percent-encoded)."""
    return quote(relative, safe="/")


def _delta_class(value: Any, tolerance: Any = None) -> str:
    number = _number(value)
    if number is None:
        return ""
    limit = _number(tolerance)
    if limit is not None and number < -limit:
        return "bad"
    return "neg" if number < 0 else "pos" if number > 0 else ""


# ---------------------------------------------------------------------------------------------
# thumbnails
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thumbnail:
    path: Path
    width: int
    height: int


def make_thumbnail(source: Path, target: Path, size: int = THUMB_SIZE) -> Thumbnail | None:
    """A JPEG thumbnail of ``source`` at ``target`` (kept if already there); None if unreadable."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - only when writing a report

    try:
        if target.exists():
            with Image.open(target) as existing:
                return Thumbnail(target, existing.width, existing.height)
        with Image.open(source) as image:
            image.thumbnail((size, size))
            rgb = image.convert("RGB")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        rgb.save(partial, "JPEG", quality=82, optimize=True)
        partial.replace(target)
        return Thumbnail(target, rgb.width, rgb.height)
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _sha16(record: CaseRecord, image: Path) -> str | None:
    sha = (record.image_sha256 or "").lower()
    if re.fullmatch(r"[0-9a-f]{16,}", sha):
        return sha[:16]
    try:
        return hashlib.sha256(image.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def _thumbnails(records: Iterable[CaseRecord], thumbs_dir: Path) -> dict[str, Thumbnail | None]:
    """Thumbnails keyed by image path, made once per content, a few at a time."""
    jobs: dict[str, tuple[Path, Path]] = {}
    by_image: dict[str, str] = {}
    for record in records:
        if not record.image_path or record.image_path in by_image:
            continue
        image = Path(record.image_path)
        if not image.is_file():
            continue
        sha = _sha16(record, image)
        if sha is None:
            continue
        by_image[record.image_path] = sha
        jobs.setdefault(sha, (image, thumbs_dir / f"{sha}.jpg"))
    if not jobs:
        return {}
    workers = max(1, min(8, os.cpu_count() or 1, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        made = dict(
            zip(jobs, pool.map(lambda job: make_thumbnail(*job), jobs.values()), strict=True)
        )
    return {path: made[sha] for path, sha in by_image.items()}


# ---------------------------------------------------------------------------------------------
# view models
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    label: str
    value: str


@dataclass(frozen=True)
class GateView:
    passed: bool | None
    headline: str
    reason: str
    css: str
    failed: tuple[str, ...]
    inconclusive: tuple[str, ...]
    flagged: tuple[str, ...]


@dataclass(frozen=True)
class ConfigColumn:
    key: str
    label: str
    is_reference: bool


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
class PromptCell:
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
    cells: tuple[PromptCell, ...]


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
    columns: tuple[ConfigColumn, ...]
    rows: tuple[GridRow, ...]
    n_images: int
    n_failed: int
    n_expected: int
    open: bool


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
    columns: tuple[ConfigColumn, ...]
    configs: tuple[ConfigRow, ...]
    prompts: tuple[PromptRow, ...]
    sections: tuple[PromptSection, ...]
    clip_chart: Chart | None
    speed_chart: Chart | None


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


# ---------------------------------------------------------------------------------------------
# building the view
# ---------------------------------------------------------------------------------------------


def _counts_text(counts: Any) -> str:
    if not isinstance(counts, Mapping) or not counts:
        return DASH
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.items())


def _count(records: Iterable[CaseRecord]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        counts[record.outcome or "unknown"] += 1
    return dict(sorted(counts.items()))


def _gate_view(summary: Mapping[str, Any]) -> GateView:
    exit_ = summary.get("exit")
    passed = _get(exit_, "gate_passed")
    passed = passed if isinstance(passed, bool) else None
    if _get(exit_, "gate_ran") is False:
        headline, css = (
            "NO GATE VERDICT: no candidate case was scored against its reference",
            "unknown",
        )
    elif _get(exit_, "gate_applied") is False:
        would = "pass" if passed else "fail"
        headline = f"GATE NOT APPLIED (random weights; it would {would}): the exit status reflects the per-case tests"
        css = "unknown"
    elif passed is None:
        headline, css = "GATE VERDICT UNAVAILABLE", "unknown"
    elif passed:
        headline, css = "GATE PASSED", "pass"
    else:
        headline, css = "GATE FAILED", "fail"
    return GateView(
        passed=passed,
        headline=headline,
        reason=_str(_get(exit_, "reason"), ""),
        css=css,
        failed=tuple(str(x) for x in _list(_get(exit_, "failed_configs"))),
        inconclusive=tuple(str(x) for x in _list(_get(exit_, "inconclusive_configs"))),
        flagged=tuple(str(x) for x in _list(_get(exit_, "flagged"))),
    )


def _server_facts(server: Any) -> tuple[Fact, ...]:
    if not isinstance(server, Mapping):
        return (Fact("server", fmt_value(server)),)
    gpu = server.get("gpu_name")
    if not gpu:
        devices = _list(server.get("devices"))
        gpu = _get(devices[0], "name") if devices else None
    facts = [
        Fact("host", fmt_value(server.get("url"))),
        Fact("ComfyUI", fmt_value(server.get("comfyui_version"))),
        Fact("GPU", fmt_value(gpu)),
        Fact("server PyTorch", fmt_value(server.get("pytorch_version"))),
        Fact("server OS", fmt_value(server.get("os"))),
    ]
    if server.get("simulated"):
        facts.append(Fact("simulated", "yes"))
    return tuple(facts)


def _scorer_text(identity: Any) -> str:
    if not isinstance(identity, Mapping):
        return fmt_value(identity)
    model = " / ".join(
        str(identity[k])
        for k in ("model", "pretrained", "net")
        if identity.get(k) not in (None, "")
    )
    parts = [model or str(identity.get("name") or identity.get("class") or DASH)]
    if identity.get("weights_identity"):
        parts.append(f"weights {identity['weights_identity']}")
    if identity.get("random_weights"):
        parts.append("RANDOM WEIGHTS")
    if identity.get("device"):
        parts.append(f"on {identity['device']}")
    if identity.get("precision"):
        parts.append(str(identity["precision"]))
    return redact(", ".join(parts))


def _config_row(config: Mapping[str, Any], alpha: Any) -> ConfigRow:
    key = str(config.get("key", DASH))
    is_ref = config.get("role") == "reference"
    gate = config.get("gate") if isinstance(config.get("gate"), Mapping) else None
    n_scored = config.get("n_scored")
    n_prompts, n_seeds = config.get("n_prompts"), config.get("n_seeds")
    n = _str(n_scored)
    if n_prompts is not None and n_seeds is not None:
        n = f"{n} ({n_prompts}×{n_seeds})"
    speed = _map(config.get("speed"))
    seconds = _number(speed.get("median_seconds"))
    speed_text, speed_detail = DASH, ""
    if seconds is not None:
        speed_text = f"{seconds:.2f} s"
        if speed.get("n"):
            speed_detail = " ".join(
                [f"n={speed['n']}", *([str(speed["source"])] if speed.get("source") else [])]
            )
    speedup = _number(speed.get("speedup"))
    verdict = _str(config.get("verdict"))
    needs = ""
    if gate and verdict in ("inconclusive", "insufficient data"):
        wants = []
        if gate.get("prompts_needed") is not None:
            wants.append(f"{gate['prompts_needed']} prompts")
        if gate.get("seeds_needed") is not None:
            wants.append(f"{gate['seeds_needed']} seeds/prompt")
        if wants:
            needs = "needs ≈ " + " or ".join(wants)
    level = _number(_get(gate, "alpha")) if gate else None
    level = level if level is not None else _number(alpha)
    lower = fmt(_get(gate, "lower_bound"), signed=True) if gate else DASH
    return ConfigRow(
        key=key,
        label=_str(config.get("label"), key),
        role="reference" if is_ref else _str(config.get("role"), "candidate"),
        is_reference=is_ref,
        n=n,
        lpips="ref" if is_ref else fmt_mean_std(config.get("lpips")),
        clipscore=fmt_mean_std(config.get("clipscore")),
        delta=fmt(_get(gate, "mean_diff"), signed=True) if gate else DASH,
        delta_css=_delta_class(_get(gate, "mean_diff")) if gate else "",
        lower_bound=lower,
        p_value=fmt_p(_get(gate, "p_value")) if gate else DASH,
        power=fmt(_get(gate, "power"), 2) if gate else DASH,
        min_detectable_drop=fmt(_get(gate, "min_detectable_drop")) if gate else DASH,
        verdict=verdict,
        verdict_css=verdict.replace(" ", "-") if verdict != DASH else "unknown",
        two_axis="" if config.get("two_axis") == verdict else _str(config.get("two_axis"), ""),
        needs=needs,
        speed=speed_text,
        speed_detail=speed_detail,
        confidence=f"{100 * (1 - level):g}%" if level is not None else "",
        speedup=f"{speedup:.2f}×" if speedup is not None else DASH,
        notes=tuple(str(n) for n in _list(_get(gate, "notes"))) if gate else (),
        expected_fail_prompts=tuple(str(p) for p in _list(config.get("expected_fail_prompts"))),
        flagged_prompts=tuple(str(p) for p in _list(config.get("flagged_prompts"))),
    )


def _config_row_from_records(
    key: str, label: str, is_ref: bool, rows: Sequence[CaseRecord]
) -> ConfigRow:
    """A headline row for a config the summary does not list (scores from the records)."""
    scores = [r.clipscore for r in rows if r.clipscore is not None]
    clip: dict[str, Any] = {}
    if scores:
        clip = {
            "mean": statistics.fmean(scores),
            "std": statistics.stdev(scores) if len(scores) > 1 else None,
        }
    return _config_row(
        {
            "key": key,
            "label": label,
            "role": "reference" if is_ref else "candidate",
            "n_scored": len(scores),
            "clipscore": clip or None,
            "verdict": "reference" if is_ref else "no data",
        },
        None,
    )


def _legend(suite: Mapping[str, Any]) -> tuple[Fact, ...]:
    params = _map(suite.get("parameters"))
    alpha = fmt_value(_get(params, "alpha", "value"))
    margin = fmt_value(_get(params, "margin", "value"))
    tolerance = fmt_value(_get(params, "tolerance", "value"))
    return (
        Fact(
            "Δ",
            "candidate CLIPScore − reference CLIPScore for the same prompt and seed; the "
            "gate averages the seeds of each prompt first (the prompt is the unit).",
        ),
        Fact(
            "Test",
            f"one-sided paired non-inferiority t-test on per-prompt mean Δ, "
            f"H0: mean Δ ≤ −δ (δ = margin = {margin}); passes when the one-sided "
            f"(1 − α) lower bound (LB) of mean Δ is above −δ. A Wilcoxon signed-rank test "
            f"and a prompt bootstrap run alongside (notes).",
        ),
        Fact("α", f"{alpha} (one-sided)"),
        Fact(
            "Power",
            "probability of passing if the configs were truly equal; min detectable "
            "drop = the margin the gate would clear with the target power.",
        ),
        Fact("Correction", _str(suite.get("per_prompt_correction"))),
        Fact(
            "Per case",
            f"a case fails when candidate CLIPScore < reference − tolerance "
            f"({tolerance}); LPIPS is the perceptual distance from the reference image "
            f"(0 = identical).",
        ),
        Fact(
            "Two-axis",
            'LPIPS and the gate read together: "different but not worse" is the '
            f"typical successful quantisation (LPIPS ≥ {fmt_value(suite.get('lpips_close'))}).",
        ),
    )


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


def _clip_chart(
    columns: Sequence[ConfigColumn],
    prompt_keys: Sequence[str],
    means: Mapping[tuple[str, str], float],
    config_means: Mapping[str, float],
    reference_key: str,
) -> Chart | None:
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
                    title=f"{prompt} · {column.label}: mean CLIPScore {value:.4f}",
                )
            )
    marks = tuple(
        Segment(
            round(centres[key] - band * 0.38, 1),
            round(y_of(value), 1),
            round(centres[key] + band * 0.38, 1),
            round(y_of(value), 1),
            f"{value:.4f}",
        )
        for key, value in config_means.items()
        if key in centres
    )
    guides: tuple[Segment, ...] = ()
    if reference_key in config_means:
        y = round(y_of(config_means[reference_key]), 1)
        label = next((c.label for c in columns if c.key == reference_key), reference_key)
        text = f"dashed: reference ({label}) mean {config_means[reference_key]:.4f}"
        guides = (Segment(_LEFT, y, _RIGHT, y, text, _RIGHT, _TOP - 6, "end"),)
    return Chart(
        title="CLIPScore per config (points: per-prompt means over seeds; bar: config mean)",
        x_label="config",
        y_label="CLIPScore",
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


def _speed_chart(configs: Sequence[Mapping[str, Any]], lpips_close: Any) -> Chart | None:
    entries = []
    left_out = []
    for config in configs:
        if config.get("role") == "reference":
            continue
        label = _str(config.get("label"), _str(config.get("key")))
        lpips = _number(_get(config, "lpips", "mean"))
        speedup = _number(_get(config, "speed", "speedup"))
        if lpips is None or speedup is None:
            left_out.append(label)
            continue
        std = _number(_get(config, "lpips", "std")) or 0.0
        entries.append((label, lpips, std, speedup, _str(config.get("verdict"))))
    if not entries:
        return None
    close = _number(lpips_close)
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
                colour=VERDICT_COLOURS.get(verdict, "#757575"),
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
        legend=tuple(LegendItem(VERDICT_COLOURS.get(v, "#757575"), v) for v in verdicts),
        categorical_x=False,
        note=f"not plotted (no LPIPS or speed): {', '.join(left_out)}" if left_out else "",
    )


class _ImageLinks:
    """Relative links from report.html to images and thumbnails."""

    def __init__(
        self,
        report_dir: ReportDir,
        thumbs: Mapping[str, Thumbnail | None],
        project_root: str | None = None,
    ) -> None:
        self.root = Path(report_dir.root).resolve()
        self.report_dir = report_dir
        self.thumbs = thumbs
        roots = {str(self.root), str(Path(report_dir.root).absolute())}
        if project_root and Path(project_root).is_absolute():
            roots.add(str(Path(project_root)))
        # longest first, so the report dir inside the project is cut before the project root
        self.prefixes = tuple(
            sorted(
                {r.rstrip("/") + "/" for r in roots if r not in ("", "/")}, key=len, reverse=True
            )
        )

    def relative(self, path: str | Path) -> str:
        """Relative to the report dir; outside it, a ``../`` path (never an absolute one)."""
        text = self.report_dir.relative(path)
        if Path(text).is_absolute():
            text = Path(os.path.relpath(Path(path).resolve(), self.root)).as_posix()
        return text

    def shorten(self, text: str) -> str:
        """``text`` with this machine's report-dir and project paths made relative."""
        for prefix in self.prefixes:
            text = text.replace(prefix, "")
        return text

    def image(self, record: CaseRecord) -> tuple[str, str, int, int]:
        """(full image href, thumbnail src, thumbnail width, height); "" where there is none."""
        if not record.image_path:
            return "", "", 0, 0
        href = _href(self.relative(record.image_path))
        thumb = self.thumbs.get(record.image_path)
        if thumb is None:
            return href, "", 0, 0
        return href, _href(self.relative(thumb.path)), thumb.width, thumb.height


def _image_cell(
    record: CaseRecord | None, column: ConfigColumn, seed: str, links: _ImageLinks
) -> ImageCell:
    if record is None:
        return ImageCell(
            present=False, config_label=column.label, seed=seed, thumb="", href="",
            thumb_width=0, thumb_height=0, alt="", clipscore=DASH, lpips=DASH, delta=DASH,
            delta_css="", is_reference=column.is_reference, outcome="not run", badge="",
            css="missing", expected_fail="", message="", cached="", title="not run",
        )  # fmt: skip
    href, thumb, width, height = links.image(record)
    badge, css = _OUTCOME_BADGES.get(record.outcome, ("", "ok"))
    if not badge and record.expected_fail:
        badge, css = "EXPECTED FAIL", "expected"
    message = links.shorten(redact(record.message))
    title_parts = [
        f"{record.prompt} · {column.label} · seed {seed}",
        f"outcome: {record.outcome or DASH}",
    ]
    if record.expected_fail:
        title_parts.append(f"expected to fail: {record.expected_fail}")
    if message:
        title_parts.append(message)
    return ImageCell(
        present=bool(href),
        config_label=column.label,
        seed=seed,
        thumb=thumb,
        href=href,
        thumb_width=width,
        thumb_height=height,
        alt=f"{record.prompt} / {column.label} / seed {seed}",
        clipscore=fmt(record.clipscore),
        lpips=DASH if column.is_reference else fmt(record.lpips),
        delta=DASH if column.is_reference else fmt(record.delta, signed=True),
        delta_css="" if column.is_reference else _delta_class(record.delta, record.tolerance),
        is_reference=column.is_reference,
        outcome=record.outcome or "unknown",
        badge=badge,
        css=css,
        expected_fail=record.expected_fail,
        message=message,
        cached=record.cached,
        title="\n".join(title_parts),
    )


def _seed_key(seed: Any) -> tuple[int, str]:
    return (0, f"{seed:020d}") if isinstance(seed, int) and seed >= 0 else (1, str(seed))


def _suite_view(
    name: str,
    suite: Mapping[str, Any],
    records: Sequence[CaseRecord],
    links: _ImageLinks,
    open_sections: bool,
) -> SuiteView:
    configs = [c for c in _list(suite.get("configs")) if isinstance(c, Mapping) and c.get("key")]
    reference = _str(_get(suite, "reference", "key"), "")
    if not reference:
        reference = next((c["key"] for c in configs if c.get("role") == "reference"), "")
    if not reference and records:
        reference = records[0].reference
    labels: dict[str, str] = {r.config: r.config_label or r.config for r in records}
    labels.update({str(c["key"]): _str(c.get("label"), str(c["key"])) for c in configs})
    if reference and _get(suite, "reference", "label"):
        labels[reference] = str(_get(suite, "reference", "label"))
    order = [str(c["key"]) for c in configs]
    order += sorted({r.config for r in records} - set(order))
    if reference in order:
        order.remove(reference)
        order.insert(0, reference)
    columns = tuple(ConfigColumn(k, labels.get(k, k), k == reference) for k in order)

    by_config: dict[str, list[CaseRecord]] = defaultdict(list)
    for record in records:
        by_config[record.config].append(record)
    params = _map(suite.get("parameters"))
    alpha = _get(params, "alpha", "value")
    rows_by_key = {str(c["key"]): _config_row(c, alpha) for c in configs}
    config_rows = tuple(
        rows_by_key.get(k)
        or _config_row_from_records(k, labels.get(k, k), k == reference, by_config[k])
        for k in order
    )

    # per-prompt table
    summary_prompts = {
        str(p["key"]): p
        for p in _list(suite.get("prompts"))
        if isinstance(p, Mapping) and p.get("key")
    }
    texts = {r.prompt: r.prompt_text for r in records}
    prompt_order = list(summary_prompts)
    prompt_order += [
        p for p in dict.fromkeys(r.prompt for r in records) if p not in summary_prompts
    ]
    by_cell: dict[tuple[str, str], list[CaseRecord]] = defaultdict(list)
    for record in records:
        by_cell[(record.prompt, record.config)].append(record)
    tolerance = _get(params, "tolerance", "value")
    means: dict[tuple[str, str], float] = {}
    prompt_rows = []
    for prompt in prompt_order:
        entry = summary_prompts.get(prompt, {})
        cells_in = _map(entry.get("cells"))
        cells = []
        for column in columns:
            cell = cells_in.get(column.key)
            cell = _map(cell)
            scores = [
                r.clipscore
                for r in by_cell.get((prompt, column.key), [])
                if r.clipscore is not None
            ]
            mean = _number(cell.get("clipscore_mean"))
            if mean is None and scores:
                mean = statistics.fmean(scores)
            if mean is not None:
                means[(prompt, column.key)] = mean
            n = cell.get("n", len(scores) if scores else None)
            cells.append(
                PromptCell(
                    clipscore=fmt(mean),
                    n=_str(n, ""),
                    delta="" if column.is_reference else fmt(cell.get("delta"), signed=True),
                    delta_css=""
                    if column.is_reference
                    else _delta_class(cell.get("delta"), tolerance),
                    lpips="" if column.is_reference else fmt(cell.get("lpips_mean"), 3),
                    p_adjusted="" if column.is_reference else fmt_p(cell.get("p_adjusted")),
                    flagged=bool(cell.get("flagged")),
                    expected_fail=bool(cell.get("expected_fail"))
                    or any(r.expected_fail for r in by_cell.get((prompt, column.key), [])),
                )
            )
        prompt_rows.append(
            PromptRow(
                key=prompt,
                text=_str(entry.get("text") or texts.get(prompt), ""),
                tags=tuple(str(t) for t in _list(entry.get("tags"))),
                anchor=_anchor(name, prompt),
                cells=tuple(cells),
            )
        )

    # image grid
    sections = []
    for row in prompt_rows:
        prompt_records = [r for r in records if r.prompt == row.key]
        seeds = sorted({r.seed for r in prompt_records}, key=_seed_key)
        lookup = {(r.config, r.seed): r for r in prompt_records}
        grid = tuple(
            GridRow(
                seed=str(seed),
                cells=tuple(
                    _image_cell(lookup.get((c.key, seed)), c, str(seed), links) for c in columns
                ),
            )
            for seed in seeds
        )
        n_failed = sum(1 for r in prompt_records if r.outcome in ("failed", "error"))
        n_expected = sum(1 for r in prompt_records if r.outcome in ("xfailed", "xpassed"))
        sections.append(
            PromptSection(
                key=row.key,
                text=row.text,
                tags=row.tags,
                anchor=row.anchor,
                columns=columns,
                rows=grid,
                n_images=sum(1 for g in grid for c in g.cells if c.present),
                n_failed=n_failed,
                n_expected=n_expected,
                open=open_sections or n_failed > 0,
            )
        )

    config_means = {
        str(c["key"]): m
        for c in configs
        if (m := _number(_get(c, "clipscore", "mean"))) is not None
    }
    return SuiteView(
        name=name,
        anchor=_anchor("suite", name),
        file=Path(str(suite["path"])).name if suite.get("path") else DASH,
        sha=str(suite.get("sha256") or "")[:12] or DASH,
        reference=labels.get(reference, reference) or DASH,
        parameters=tuple(
            Fact(
                p,
                f"{fmt_value(_get(params, p, 'value'))} ({_str(_get(params, p, 'source'), 'source unknown')})",
            )
            for p in ("tolerance", "margin", "alpha", "clip_floor")
            if isinstance(params.get(p), Mapping)
        ),
        legend=_legend(suite),
        counts=_counts_text(suite.get("counts") or _count(records)),
        confidence=next((c.confidence for c in config_rows if c.confidence), ""),
        columns=columns,
        configs=config_rows,
        prompts=tuple(prompt_rows),
        sections=tuple(sections),
        clip_chart=_clip_chart(columns, prompt_order, means, config_means, reference),
        speed_chart=_speed_chart(configs, suite.get("lpips_close")),
    )


def build_view(
    summary: Mapping[str, Any], records: Sequence[CaseRecord], report_dir: ReportDir,
    thumbs: Mapping[str, Thumbnail | None] | None = None,
) -> ReportView:  # fmt: skip
    """The whole page's view model; ``thumbs`` maps image paths to their thumbnails."""
    rootpath = _get(summary, "options", "rootpath")
    links = _ImageLinks(report_dir, thumbs or {}, rootpath if isinstance(rootpath, str) else None)
    suites_in = [s for s in _list(summary.get("suites")) if isinstance(s, Mapping)]
    by_suite: dict[str, list[CaseRecord]] = defaultdict(list)
    for record in records:
        by_suite[record.suite].append(record)
    names = [str(s.get("name", DASH)) for s in suites_in]
    extra = [n for n in by_suite if n not in names]
    open_sections = len(records) <= _OPEN_SECTIONS_UP_TO
    suites = tuple(
        _suite_view(name, suite, by_suite.get(name, []), links, open_sections)
        for name, suite in [*zip(names, suites_in, strict=True), *((n, {}) for n in extra)]
    )

    env = _map(summary.get("environment"))
    servers = tuple(_server_facts(s) for s in _list(env.get("servers")))
    scorers_in = _map(env.get("scorers"))
    scorers = tuple(Fact(str(k), _scorer_text(v)) for k, v in scorers_in.items())
    hosts = sorted({f.value for s in servers for f in s if f.label == "host"})
    if not hosts:
        hosts = sorted({redact(r.host) for r in records if r.host})
    gpus = sorted({f.value for s in servers for f in s if f.label == "GPU"})
    comfy = sorted({f.value for s in servers for f in s if f.label == "ComfyUI"})
    overview = (
        Fact("run id", _str(summary.get("run_id"))),
        Fact("created", _str(summary.get("created"))),
        Fact("host(s)", ", ".join(hosts) or DASH),
        Fact("GPU", ", ".join(gpus) or DASH),
        Fact("ComfyUI", ", ".join(comfy) or DASH),
        Fact("scorers", "; ".join(f"{s.label}: {s.value}" for s in scorers) or DASH),
        Fact(
            "cases",
            f"{summary.get('n_cases', len(records))} ({_counts_text(_count(records)) if records else DASH})",
        ),
    )
    environment = tuple(
        Fact(label, fmt_value(env.get(key)))
        for key, label in (
            ("plugin_version", "plugin"),
            ("python", "Python"),
            ("pytest", "pytest"),
            ("torch", "torch"),
            ("device", "scorer device"),
            ("platform", "platform"),
        )
        if key in env
    ) + tuple(
        Fact(str(k), fmt_value(v))
        for k, v in env.items()
        if k
        not in {
            "plugin_version",
            "python",
            "pytest",
            "torch",
            "device",
            "platform",
            "servers",
            "scorers",
        }
    )
    options_in = _map(summary.get("options"))
    options = tuple(
        Fact(str(k), fmt_value(v)) for k, v in sorted(options_in.items()) if str(k) != "headers"
    )
    banners = tuple(str(b) for b in _list(summary.get("banners")))
    title_bits = [b.split(" —")[0] for b in banners]
    return ReportView(
        title=" · ".join(
            [*title_bits, f"Z-Image quality report {_str(summary.get('run_id'), '')}".strip()]
        ),
        run_id=_str(summary.get("run_id")),
        created=_str(summary.get("created")),
        banners=banners,
        gate=_gate_view(summary),
        overview=overview,
        servers=servers,
        scorers=scorers,
        environment=environment,
        options=options,
        suites=suites,
        n_cases=len(records),
        counts=_counts_text(_count(records)),
    )


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2  # noqa: PLC0415 - only when a report is written

    return jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_zimage_quality", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(view: ReportView) -> str:
    """The page's HTML for a view model."""
    return _environment().get_template(_TEMPLATE).render(view=view)


def write_html_report(
    report_dir: ReportDir, summary: Mapping[str, Any], records: Sequence[CaseRecord]
) -> Path:
    """Write ``report.html`` (and missing thumbnails) into ``report_dir``; returns its path."""
    thumbs = _thumbnails(records, report_dir.thumbs_dir)
    html = render(build_view(summary, records, report_dir, thumbs))
    path = report_dir.html_path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)
    return path
