"""The self-contained HTML report of one run: ``report.html`` in the report directory.

The view model (:mod:`.views`) is built from the typed run summary (the objects written to
``summary.json``) and the per-case records; a Jinja2 template (``templates/report.html.j2``,
autoescaped) only lays it out. Nothing here computes a statistic, so the terminal tables,
``summary.json`` and the page cannot disagree; the words shared with the terminal come from
:mod:`.vocabulary`.

The page opens from disk with no server and no network: inline CSS, inline SVG charts
(:mod:`.charts`), no script. Images are referenced relatively (``images/...`` and
``thumbs/...``), so the report directory can be moved or zipped as a CI artifact. Thumbnails
(JPEG, about 256 px) are made once per image content under ``thumbs/<sha16>.jpg`` and loaded
lazily, so a 1,000-case report stays light.

Entry point: :func:`write_html_report`.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..metrics import MetricInfo
from ..thumbnails import Thumbnail, make_thumbnails
from .charts import Column, clip_chart, speed_chart
from .ci_html import render_ci_section
from .grid import ImageLinks, image_sections
from .metric_views import metric_charts, metric_gate_rows, metric_rows
from .views import (
    DASH,
    ConfigRow,
    Fact,
    GateView,
    PromptCellView,
    PromptRow,
    ReportView,
    SuiteView,
    anchor_id,
    delta_class,
    fmt,
    fmt_mean_std,
    fmt_p,
    fmt_value,
    redact,
)
from .vocabulary import html_columns, html_gate_headline, legend, verdict_label, verdict_text

if TYPE_CHECKING:
    import jinja2

    from ..artifacts import ReportDir
    from ..baseline import HistoryPoint
    from ..records import CaseRecord
    from ..summary import (
        ConfigSummary,
        Environment,
        ExitDecision,
        RunSummary,
        ServerSummary,
        SuiteSummary,
    )

__all__ = ["build_view", "render", "write_html_report"]

_TEMPLATE = "report.html.j2"
# Open every per-prompt section when the whole report has at most this many images.
_OPEN_SECTIONS_UP_TO = 240
_ENVIRONMENT_LABELS = (
    ("plugin_version", "plugin"),
    ("python", "Python"),
    ("pytest", "pytest"),
    ("torch", "torch"),
    ("device", "scorer device"),
    ("platform", "platform"),
)


def _counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.items()) or DASH


def _count(records: Iterable[CaseRecord]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        counts[record.outcome or "unknown"] += 1
    return dict(sorted(counts.items()))


def _gate_view(exit_: ExitDecision) -> GateView:
    headline, tone = html_gate_headline(exit_)
    return GateView(
        passed=exit_.gate_passed and not exit_.stopped_early,
        headline=headline,
        reason="" if not exit_.reason or exit_.reason in headline else exit_.reason,
        css=tone,
        failed=exit_.failed_configs,
        inconclusive=exit_.inconclusive_configs,
        flagged=exit_.flagged,
        incomplete=exit_.incomplete_configs,
        advisory=exit_.advisory,
    )


def _server_facts(server: ServerSummary) -> tuple[Fact, ...]:
    gpu = server.gpu_name or (str(server.devices[0].get("name") or "") if server.devices else "")
    facts = [
        Fact("host", fmt_value(server.url)),
        Fact("ComfyUI", fmt_value(server.comfyui_version)),
        Fact("GPU", fmt_value(gpu)),
        Fact("server PyTorch", fmt_value(server.pytorch_version)),
        Fact("server OS", fmt_value(server.os)),
    ]
    if server.simulated:
        facts.append(Fact("simulated", "yes"))
    return tuple(facts)


def _scorer_text(identity: Mapping[str, Any]) -> str:
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


def _config_row(
    config: ConfigSummary, alpha: float, power: float | None, mdd: float | None
) -> ConfigRow:
    gate = config.gate
    speed = config.speed
    speed_text, speed_detail = DASH, ""
    if speed.median_seconds is not None:
        speed_text = f"{speed.median_seconds:.2f} s"
        if speed.n:
            speed_detail = " ".join([f"n={speed.n}", *([speed.source] if speed.source else [])])
    needs = ""
    if gate and config.decision in ("inconclusive", "insufficient data"):
        wants = []
        if gate.prompts_needed is not None:
            wants.append(f"{gate.prompts_needed} prompts")
        if gate.seeds_needed is not None:
            wants.append(f"{gate.seeds_needed} seeds/prompt")
        if wants:
            needs = "planned 80% power at ≈ " + " or ".join(wants)
    level = gate.alpha if gate else alpha
    return ConfigRow(
        key=config.key,
        label=config.label,
        role=config.role,
        is_reference=config.is_reference,
        n=f"{config.n_scored} ({config.n_prompts}×{config.n_seeds})",
        lpips="ref" if config.is_reference else fmt_mean_std(config.lpips),
        clipscore=fmt_mean_std(config.clipscore),
        delta=fmt(gate.mean_diff, signed=True) if gate else DASH,
        delta_css=delta_class(gate.mean_diff) if gate else "",
        lower_bound=fmt(gate.lower_bound, signed=True) if gate else DASH,
        p_value=fmt_p(gate.p_value) if gate else DASH,
        power=fmt(power, 2) if gate else DASH,
        min_detectable_drop=fmt(mdd) if gate else DASH,
        verdict=verdict_text(config).split(": ")[0],
        verdict_css=config.decision.replace(" ", "-"),
        two_axis=""
        if config.two_axis is None
        or config.two_axis.lower() == verdict_label(config.decision).lower()
        else str(config.two_axis),
        needs=needs,
        speed=speed_text,
        speed_detail=speed_detail,
        confidence=f"{100 * (1 - level):g}%",
        speedup=f"{speed.speedup:.2f}×" if speed.speedup is not None else DASH,
        notes=(*config.notes, *(gate.notes if gate else ())),
        expected_fail_prompts=config.expected_fail_prompts,
        flagged_prompts=config.flagged_prompts,
    )


def _prompt_rows(suite: SuiteSummary, columns: Sequence[Column]) -> tuple[PromptRow, ...]:
    rows = []
    for prompt in suite.prompts:
        cells = []
        for column in columns:
            cell = prompt.cells.get(column.key)
            if cell is None:
                cells.append(PromptCellView(DASH, "", "" if column.is_reference else DASH, "", "" if column.is_reference else DASH, "" if column.is_reference else DASH, False, False))  # fmt: skip
                continue
            candidate = not column.is_reference
            cells.append(
                PromptCellView(
                    clipscore=fmt(cell.clipscore_mean),
                    n=str(cell.n),
                    delta=fmt(cell.delta, signed=True) if candidate else "",
                    delta_css=delta_class(cell.delta, suite.tolerance) if candidate else "",
                    lpips=fmt(cell.lpips_mean, 3) if candidate else "",
                    p_adjusted=fmt_p(cell.p_adjusted) if candidate else "",
                    flagged=bool(cell.flagged),
                    expected_fail=cell.expected_fail,
                )
            )
        rows.append(
            PromptRow(
                key=prompt.key,
                text=prompt.text,
                tags=prompt.tags,
                anchor=anchor_id(suite.name, prompt.key),
                cells=tuple(cells),
            )
        )
    return tuple(rows)


def _suite_view(
    suite: SuiteSummary,
    records: Sequence[CaseRecord],
    links: ImageLinks,
    open_sections: bool,
    metrics: Sequence[MetricInfo] = (),
) -> SuiteView:
    reference = suite.reference.key
    configs = sorted(suite.configs, key=lambda c: c.key != reference)  # the reference first
    columns = tuple(Column(c.key, c.label, c.key == reference) for c in configs)
    config_rows = tuple(
        _config_row(c, suite.alpha, suite.planned_power(c), suite.planned_mdd(c)) for c in configs
    )
    prompt_rows = _prompt_rows(suite, columns)
    means = {
        (prompt.key, key): cell.clipscore_mean
        for prompt in suite.prompts
        for key, cell in prompt.cells.items()
    }
    config_means = {c.key: c.clipscore.mean for c in configs if c.clipscore is not None}
    headers, rows = metric_rows(suite, metrics) if metrics else ([], [])
    gate_headers, gate_rows = metric_gate_rows(suite)
    return SuiteView(
        name=suite.name,
        anchor=anchor_id("suite", suite.name),
        file=Path(suite.path).name if suite.path else DASH,
        sha=(suite.sha256 or "")[:12] or DASH,
        reference=suite.reference.label,
        parameters=tuple(
            Fact(name, f"{fmt_value(p.value)} ({p.source})") for name, p in suite.parameters.items()
        ),
        legend=tuple(Fact(entry.term, entry.text) for entry in legend(suite)),
        counts=_counts_text(suite.counts),
        confidence=next((c.confidence for c in config_rows if not c.is_reference), ""),
        headline_columns=html_columns(
            confidence=next((c.confidence for c in config_rows if not c.is_reference), "")
        ),
        columns=columns,
        configs=config_rows,
        prompts=prompt_rows,
        sections=image_sections(
            prompt_rows, columns, records, links, open_sections, {m.name: m for m in metrics}
        ),
        clip_chart=clip_chart(
            columns, [p.key for p in suite.prompts], means, config_means, reference
        ),
        speed_chart=speed_chart(suite.configs, suite.lpips_close),
        metric_headers=tuple(headers),
        metric_rows=tuple(tuple(row) for row in rows),
        metric_charts=metric_charts(suite, configs, columns, metrics),
        metric_gate_headers=tuple(gate_headers),
        metric_gate_rows=tuple(tuple(row) for row in gate_rows),
    )


def _environment_facts(env: Environment) -> tuple[Fact, ...]:
    data = env.to_dict()
    known = dict(_ENVIRONMENT_LABELS)
    return tuple(Fact(label, fmt_value(data[key])) for key, label in _ENVIRONMENT_LABELS) + tuple(
        Fact(str(key), fmt_value(value)) for key, value in env.extra.items() if key not in known
    )


def build_view(
    summary: RunSummary, records: Sequence[CaseRecord], report_dir: ReportDir,
    thumbs: Mapping[str, Thumbnail | None] | None = None,
) -> ReportView:  # fmt: skip
    """The whole page's view model; ``thumbs`` maps image paths to their thumbnails."""
    rootpath = summary.options.get("rootpath")
    links = ImageLinks(report_dir, thumbs or {}, rootpath if isinstance(rootpath, str) else None)
    by_suite: dict[str, list[CaseRecord]] = defaultdict(list)
    for record in records:
        by_suite[record.suite].append(record)
    open_sections = len(records) <= _OPEN_SECTIONS_UP_TO
    suites = tuple(
        _suite_view(suite, by_suite.get(suite.name, []), links, open_sections, summary.metrics)
        for suite in summary.suites
    )
    env = summary.environment
    servers = tuple(_server_facts(s) for s in env.servers)
    scorers = tuple(Fact(str(k), _scorer_text(v)) for k, v in env.scorers.items())
    hosts = sorted({f.value for s in servers for f in s if f.label == "host"})
    if not hosts:
        hosts = sorted({redact(r.host) for r in records if r.host})
    gpus = sorted({f.value for s in servers for f in s if f.label == "GPU"})
    comfy = sorted({f.value for s in servers for f in s if f.label == "ComfyUI"})
    counts = _counts_text(_count(records)) if records else DASH
    overview = (
        Fact("run id", summary.run_id or DASH),
        Fact("created", summary.created or DASH),
        Fact("host(s)", ", ".join(hosts) or DASH),
        Fact("GPU", ", ".join(gpus) or DASH),
        Fact("ComfyUI", ", ".join(comfy) or DASH),
        Fact("scorers", "; ".join(f"{s.label}: {s.value}" for s in scorers) or DASH),
        Fact("cases", f"{summary.n_cases} ({counts})"),
    )
    options = tuple(
        Fact(str(k), fmt_value(v)) for k, v in sorted(summary.options.items()) if k != "headers"
    )
    title_bits = [b.split(" —")[0] for b in summary.banners]
    return ReportView(
        title=" · ".join([*title_bits, f"Z-Image quality report {summary.run_id}".strip()]),
        run_id=summary.run_id or DASH,
        created=summary.created or DASH,
        banners=summary.banners,
        gate=_gate_view(summary.exit),
        overview=overview,
        servers=servers,
        scorers=scorers,
        environment=_environment_facts(env),
        options=options,
        suites=suites,
        n_cases=len(records),
        counts=_counts_text(_count(records)),
    )


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
    report_dir: ReportDir,
    summary: RunSummary,
    records: Sequence[CaseRecord],
    *,
    history: Mapping[tuple[str, str], Sequence[HistoryPoint]] | None = None,
    history_notes: Sequence[str] = (),
) -> Path:
    """Write ``report.html`` (and missing thumbnails) into ``report_dir``; returns its path.
    ``history``: each config's Δ and verdict across stored runs (``baseline.load_history``)."""
    thumbs = make_thumbnails(records, report_dir.thumbs_dir)
    view = build_view(summary, records, report_dir, thumbs)
    ci = render_ci_section(_environment(), summary, history=history, history_notes=history_notes)
    html = render(dataclasses.replace(view, ci_section=ci))
    path = report_dir.html_path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(html, encoding="utf-8")
    partial.replace(path)
    return path
