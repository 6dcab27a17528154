"""The run as a Markdown pull-request summary (GitHub's ``$GITHUB_STEP_SUMMARY``, a PR comment).

Formatting only, like the terminal and HTML renderers: the headline and per-prompt tables are
the terminal's own rows (:func:`.terminal.headline_rows`, :func:`.terminal.prompt_rows`), the
words come from :mod:`.vocabulary`, and the stamps are the summary's banners (SIMULATED,
RANDOM WEIGHTS, ADVISORY), so the three outputs cannot disagree. Long tables fold into
``<details>`` so that a 100-prompt suite stays readable in a pull request.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..provenance import Lane
from .ci_views import SPEED_MEMORY_HEADERS, VRAM_NOTE, noise_floor_text, speed_memory_rows
from .metric_views import (
    GRID_SKIPPED,
    config_metric_cell,
    metric_gate_rows,
    metric_header,
    prompt_metric_rows,
    shown_metrics,
)
from .text_tables import headline_rows, prompt_rows
from .vocabulary import WARNING_VERDICTS, gate_headline, legend

if TYPE_CHECKING:
    from ..baseline import Comparison
    from ..metrics import MetricInfo
    from ..records import CaseRecord
    from ..summary import RunSummary, SuiteSummary

__all__ = [
    "FOLD_ROWS",
    "STEP_SUMMARY_ENV",
    "append_step_summary",
    "render_markdown",
    "write_markdown",
]

#: Tables longer than this fold into ``<details>``.
FOLD_ROWS = 20
#: Worst cases listed per suite.
WORST_CASES = 10
#: GitHub Actions names the job summary file in this variable.
STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"

_TONE_MARK = {"pass": "✅", "fail": "❌", "unknown": "⚠️"}


def _cell(text: object) -> str:
    """A table cell: HTML-escaped (prompt text is user input), pipes escaped, one line."""
    value = html.escape(" ".join(str(text).split()), quote=False)
    return value.replace("|", "\\|")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], aligns: str) -> list[str]:
    marks = {"<": "---", ">": "---:"}
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "| " + " | ".join(marks[a] for a in aligns) + " |",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _fold(title: str, lines: Sequence[str], n_rows: int, *, fold: int) -> list[str]:
    """``lines`` as they are, or inside ``<details>`` when the table has over ``fold`` rows.
    The blank lines around the table are what makes GitHub render Markdown inside HTML."""
    if n_rows <= fold:
        return [f"**{html.escape(title)}**", "", *lines, ""]
    return [
        f"<details><summary>{html.escape(title)} ({n_rows} rows)</summary>",
        "",
        *lines,
        "",
        "</details>",
        "",
    ]


def _verdict_mark(verdict: str) -> str:
    if verdict in ("pass", "non-inferior"):
        return "✅ "
    if verdict in ("fail", "inferior"):
        return "❌ "
    return "⚠️ " if verdict in WARNING_VERDICTS or verdict == "incomplete" else ""


def _suite_lines(
    suite: SuiteSummary,
    records: Sequence[CaseRecord],
    comparison: Comparison | None,
    fold: int,
    metrics: Sequence[MetricInfo] = (),
) -> list[str]:
    ref = suite.reference.label
    prompts = len(suite.prompts)
    seeds = max((c.n_seeds for c in suite.configs), default=0)
    counts = ", ".join(f"{n} {outcome}" for outcome, n in suite.counts.items())
    lines = [
        f"### Suite `{_cell(suite.name)}`",
        "",
        f"Reference **{_cell(ref)}**, {prompts} prompts × {seeds} seeds; per-case tolerance "
        f"{suite.tolerance:g}, margin δ = {suite.margin:g}, α = {suite.alpha:g} (one-sided). "
        f"Cases: {counts or 'none'}.",
        "",
    ]
    headers, rows, verdicts = headline_rows(suite)
    # one column per further metric (CLIPScore and LPIPS have theirs), before the verdict
    further = [m for m in shown_metrics(metrics, verbose=True) if m.name not in GRID_SKIPPED]
    headers = [*headers[:-2], *(metric_header(m) for m in further), *headers[-2:]]
    marked = [
        [
            *row[:-2],
            *(config_metric_cell(m, config) for m in further),
            _verdict_mark(v) + row[-2],
            row[-1],
        ]
        for row, v, config in zip(rows, verdicts, suite.configs, strict=True)
    ]
    aligns = "<" + ">" * (len(headers) - 3) + "<>"
    lines += [*_table(headers, marked, aligns), ""]
    g_headers, g_rows = metric_gate_rows(suite)
    if g_rows:  # each gated metric's own decision (docs/metrics.md: further gated metrics)
        lines += [
            "Gated metrics: each at α/k (Bonferroni); a config is NON-INFERIOR only if every "
            "gated metric is.",
            "",
            *_table(g_headers, g_rows, "<<<>>>><>"),
            "",
        ]

    p_headers, p_rows = prompt_rows(suite)
    texts = {p.key: p.text for p in suite.prompts}
    p_rows = [[row[0], texts.get(row[0], ""), *row[1:]] for row in p_rows]
    p_headers = [p_headers[0], "text", *p_headers[1:]]
    table = _table(p_headers, p_rows, "<<" + ">" * (len(p_headers) - 2))
    table.append("")
    table.append(
        f"Mean CLIPScore per prompt (Δ vs {_cell(ref)}); * = drop flagged "
        f"({_cell(suite.per_prompt_correction)}); xf = expected to fail."
    )
    lines += _fold("Per prompt", table, len(p_rows), fold=fold)
    lines += _prompt_metric_lines(suite, further, fold)

    lines += _worst_cases(suite, records, comparison, fold)
    if comparison is not None:
        lines += _baseline_lines(suite, comparison, fold)
    entries = [f"- **{_cell(e.term)}**: {_cell(e.text)}" for e in legend(suite)]
    lines += ["<details><summary>Legend</summary>", "", *entries, "", "</details>", ""]
    return lines


def _prompt_metric_lines(
    suite: SuiteSummary, metrics: Sequence[MetricInfo], fold: int
) -> list[str]:
    """Per prompt, each further prompt metric's mean per config (text accuracy: the prompts
    that declare text); the reference-based ones are in the verdict table only."""
    lines: list[str] = []
    for info in metrics:
        if info.reference_based:
            continue
        headers, rows = prompt_metric_rows(suite, info)
        if rows:
            table = _table(headers, rows, "<" + ">" * (len(headers) - 1))
            lines += _fold(f"Per prompt: {info.label}", table, len(rows), fold=fold)
    return lines


def _worst_cases(
    suite: SuiteSummary,
    records: Sequence[CaseRecord],
    comparison: Comparison | None,
    fold: int,
) -> list[str]:
    scored = [
        r
        for r in records
        if r.suite == suite.name and r.role != "reference" and r.delta is not None
    ]
    if not scored:
        return []
    worst = sorted(scored, key=lambda r: (r.delta if r.delta is not None else 0.0, r.case_id))
    labels: Mapping[str, str] = {}
    if comparison is not None:
        labels = {c.case_id: c.status for c in comparison.cases if c.suite == suite.name}
    rows = [
        [
            r.case_id,
            r.config_label,
            f"{r.delta:+.4f}" if r.delta is not None else "—",
            f"{r.lpips:.3f}" if r.lpips is not None else "—",
            r.outcome or "—",
            *([labels.get(r.case_id, "")] if comparison is not None else []),
        ]
        for r in worst[:WORST_CASES]
    ]
    headers = ["case", "config", f"Δ vs {suite.reference.label}", "LPIPS", "outcome"]
    if comparison is not None:
        headers.append("failure is")
    table = _table(headers, rows, "<<>><<"[: len(headers)])
    return _fold(f"Worst {len(rows)} of {len(scored)} candidate cases", table, len(rows), fold=fold)


def _number(value: float | None, sign: bool = True) -> str:
    if value is None:
        return "—"
    return f"{value:+.4f}" if sign else f"{value:.4f}"


def _baseline_lines(suite: SuiteSummary, comparison: Comparison, fold: int) -> list[str]:
    rows = [
        [
            c.label,
            f"{c.verdict_then or '—'} → {c.verdict_now}",
            _number(c.mean_diff_then),
            _number(c.mean_diff_now),
            _number(c.change),
            c.status or "",
        ]
        for c in comparison.configs
        if c.suite == suite.name
    ]
    if not rows:
        return []
    run = comparison.run_id or comparison.path
    lines = [f"**Since baseline `{_cell(run)}`** ({_cell(comparison.created)})", ""]
    if not comparison.lane_compatible:
        lines += [f"> ⚠️ {_cell(n)}" for n in comparison.notes if "lane" in n] + [""]
    headers = ["config", "verdict then → now", "Δ then", "Δ now", "change", "failure is"]
    lines += [*_table(headers, rows, "<<>>><"), ""]
    prompts = [p for p in comparison.prompts if p.suite == suite.name]
    p_rows = [
        [p.prompt, p.config, _number(p.delta_then), _number(p.delta_now), _number(p.change)]
        for p in sorted(prompts, key=lambda p: (p.change is None, p.change or 0.0))
    ]
    table = _table(["prompt", "config", "Δ then", "Δ now", "change"], p_rows, "<<>>>")
    lines += _fold(
        "Per prompt since the baseline (largest drop first)", table, len(p_rows), fold=fold
    )
    cases = [c for c in comparison.cases if c.suite == suite.name]
    if cases:
        c_rows = [[c.case_id, c.outcome_then or "absent", c.status] for c in cases]
        table = _table(["failing case", "in the baseline", "failure is"], c_rows, "<<<")
        lines += _fold("Failing cases against the baseline", table, len(c_rows), fold=fold)
    return lines


def _ci_lines(summary: RunSummary) -> list[str]:
    """Speed and memory per config, the noise floor, the run's verdict in words."""
    lines: list[str] = []
    rows = speed_memory_rows(summary) if summary.vram else []
    if rows:
        lines += ["### Speed and memory", ""]
        lines += [*_table(list(SPEED_MEMORY_HEADERS), rows, "<>>>>"), ""]
        lines += [f"<sub>{_cell(VRAM_NOTE)}</sub>", ""]
    floor = noise_floor_text(summary)
    if floor:
        mark = "> ⚠️ " if "WARNING" in floor else "> "
        lines += [f"{mark}{_cell(floor)}", ""]
    verdicts = summary.verdicts or {}
    if verdicts.get("counts", {}).get("error"):
        counts = verdicts["counts"]
        kinds = list((verdicts.get("error_kinds") or {}).values())
        lines += [
            f"> **{counts['error']} case(s) could not be generated or scored** "
            f"({kinds.count('infrastructure')} infrastructure, {kinds.count('setup')} setup): "
            f"errors, not quality failures ({counts.get('failed', 0)} failed on quality).",
            "",
        ]
    return lines


def _provenance_lines(summary: RunSummary) -> list[str]:
    env = summary.environment
    lanes: dict[str, tuple[Lane, list[str]]] = {}
    for server in env.servers:
        lane = Lane.from_server_record(server.to_dict())
        lanes.setdefault(lane.id, (lane, []))[1].append(server.url)
    rows = [[lane.label, lane.id, ", ".join(urls)] for lane, urls in lanes.values()]
    lines = ["<details><summary>Hardware and provenance</summary>", ""]
    if rows:
        lines += [*_table(["lane (hardware class)", "id", "servers"], rows, "<<<"), ""]
    scorers = [
        f"{name}: {identity.get('model') or identity.get('net') or '?'}"
        f"/{identity.get('pretrained') or '?'} "
        f"(weights {identity.get('weights_identity', 'unknown')}, {identity.get('device', '')})"
        for name, identity in env.scorers.items()
    ]
    facts = [
        f"plugin {env.plugin_version}, Python {env.python}, pytest {env.pytest}, "
        f"torch {env.torch or 'not loaded'}",
        *(f"suite {s.name}: sha256 {s.sha256 or 'unknown'}" for s in summary.suites),
        *scorers,
        f"run {summary.run_id}, {summary.created}",
    ]
    block = summary.provenance or {}
    facts += [
        f"model file {m.get('name')}: {json.dumps(m.get('identity'), sort_keys=True)[:120]}"
        for m in block.get("model_files") or ()
        if isinstance(m, Mapping)
    ]
    facts += [f"regenerated: {note}" for note in block.get("regenerated_other_lane") or ()]
    lines += [f"- {_cell(fact)}" for fact in facts]
    return [*lines, "", "</details>", ""]


def render_markdown(
    summary: RunSummary,
    *,
    records: Sequence[CaseRecord] = (),
    comparison: Comparison | None = None,
    report_path: str = "",
    fold: int = FOLD_ROWS,
) -> str:
    """The whole run as GitHub-flavoured Markdown (tables, ``<details>``)."""
    headline, tone = gate_headline(summary.exit)
    lines = [f"## {_TONE_MARK[tone]} {_cell(headline)}", ""]
    for banner in summary.banners:  # one quote each: adjacent ">" lines would merge into one
        lines += [f"> **{_cell(banner)}**", ""]
    if comparison is not None:
        counts = comparison.counts()
        lines += [
            f"Failures against the baseline: **{counts['new']} new**, "
            f"{counts['inherited']} inherited, {counts['no baseline']} without a baseline.",
            "",
        ]
    for suite in summary.suites:
        lines += _suite_lines(suite, records, comparison, fold, summary.metrics)
    lines += _ci_lines(summary)
    lines += _provenance_lines(summary)
    if report_path:
        lines += [
            f"Full report: `{_cell(report_path)}` (summary.json and results.jsonl beside it)."
        ]
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(path: Path, text: str) -> None:
    """Write the summary to the file the user named (its folder is created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def append_step_summary(text: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append to GitHub Actions' job summary when the job names one; the file it wrote."""
    target = environ.get(STEP_SUMMARY_ENV, "")
    if not target:
        return None
    path = Path(target)
    with path.open("a", encoding="utf-8") as file:
        file.write(text if text.startswith("\n") else "\n" + text)
    return path
