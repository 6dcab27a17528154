"""Terminal output: the report header and the summary tables. Formatting only.

Everything shown is read from the typed run summary (``summary.RunSummary``), the same
objects written to summary.json, so the terminal, the JSON and the HTML report cannot disagree.
Words shared with report.html (verdicts, columns, legend) come from :mod:`.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..summary.model import ADVISORY_BANNER, RANDOM_BANNER
from .metric_views import metric_gate_rows, metric_rows, prompt_metric_rows, shown_metrics
from .text_tables import (
    display_width,
    format_table,
    headline_rows,
    mean_sd_text,
    number_text,
    power_rows,
    prompt_rows,
    speed_text,
)
from .vocabulary import gate_headline, legend, verdict_label, verdict_tone

if TYPE_CHECKING:
    from ..records import CaseRecord
    from ..settings import Settings
    from ..summary import RunSummary, SuiteSummary


__all__ = [
    "TerminalWriter",
    "display_width",
    "format_table",
    "report_header",
    "write_terminal_summary",
]


class TerminalWriter(Protocol):
    """The part of pytest's TerminalReporter the summary writes to."""

    def write_sep(self, sep: str, title: str, **markup: bool) -> None: ...

    def write_line(self, line: str, **markup: bool) -> None: ...


def report_header(settings: Settings, *, host_lines: Sequence[str], report_root: Path) -> list[str]:
    """pytest's report header; ``host_lines`` describe the hosts (the session probes them)."""
    if not settings.hosts:
        return []  # unrelated runs stay quiet; zimage items say why they skip
    if settings.simulated:
        lines = [
            "zimage: host simulated (SIMULATED: an in-process fake ComfyUI renders the images)"
        ]
    else:
        lines = [f"zimage: host {host}" for host in host_lines]
    weights = RANDOM_BANNER if settings.random_weights else "pretrained"
    lines.append(
        f"zimage: CLIP {settings.clip_model}/{settings.clip_pretrained}, LPIPS {settings.lpips_net}, "
        f"device {settings.device}, {settings.precision}, weights {weights}"
    )
    lines.append(f"zimage: report dir {report_root}")
    if settings.advisory:
        lines.append(f"zimage: {ADVISORY_BANNER}")
    if settings.header_names:
        lines.append(f"zimage: extra headers {', '.join(settings.header_names)} (values hidden)")
    return lines


def write_terminal_summary(
    tr: TerminalWriter,
    summary: RunSummary | None,
    *,
    verbosity: int,
    records: Sequence[CaseRecord],
    html_path: Path,
    has_host: bool,
    any_zimage_items: bool,
) -> None:
    """The zimage section of pytest's terminal summary (nothing for runs without zimage items)."""
    if not has_host:
        if any_zimage_items:
            tr.write_sep("=", "zimage quality gate", yellow=True)
            tr.write_line(
                "zimage: no quality gate ran: no ComfyUI host given (--zimage-host)", yellow=True
            )
        return
    if summary is None:
        if any_zimage_items:
            tr.write_sep("=", "zimage quality gate", yellow=True)
            tr.write_line("zimage: no case finished, so no gate was computed", yellow=True)
        return
    _write_summary(tr, summary, verbosity, records, html_path)


def _color(verdict: str) -> dict[str, bool]:
    return {
        "pass": {"green": True},
        "fail": {"red": True, "bold": True},
        "warn": {"yellow": True},
    }.get(verdict_tone(verdict), {})


def _write_quiet(tr: TerminalWriter, suite: SuiteSummary) -> None:
    for config in suite.configs:
        if config.is_reference:
            continue
        gate = config.gate
        used = str(gate.n_prompts if gate else 0)
        if config.missing_prompts:
            used += f"/{config.planned_prompts}"
        tr.write_line(
            f"zimage {suite.name}: {config.label} {verdict_label(config.decision)}"
            f" Δ={number_text(gate.mean_diff if gate else None, sign=True)}"
            f" lower={number_text(gate.lower_bound if gate else None, sign=True)}"
            f" (δ={suite.margin:g}) n={used} prompts"
            f" LPIPS={mean_sd_text(config.lpips, 3)} speed={speed_text(config.speed)}",
            **_color(config.decision),
        )


def _write_summary(
    tr: TerminalWriter,
    summary: RunSummary,
    verbosity: int,
    records: Sequence[CaseRecord],
    html_path: Path,
) -> None:
    tr.write_sep("=", "zimage quality gate")
    if summary.exit.stopped_early:
        tr.write_line(
            f"INCOMPLETE — the run stopped early ({summary.exit.stopped_early})",
            red=True,
            bold=True,
        )
    for line in summary.banners:
        tr.write_line(line, red=True, bold=True)
    for suite in summary.suites:
        if not any(config.n_scored for config in suite.configs):
            tr.write_line(f"suite {suite.name}: no case was scored", yellow=True)
            continue
        if verbosity < 0:
            _write_quiet(tr, suite)
            continue
        n_prompts = max((c.n_prompts for c in suite.configs), default=0)
        n_seeds = max((c.n_seeds for c in suite.configs), default=0)
        band = suite.plan.band.describe() if suite.plan else f"tolerance {suite.tolerance:g}"
        tr.write_line(
            f"suite {suite.name}: reference {suite.reference.label}, {n_prompts} prompts × "
            f"{n_seeds} seeds; margin δ = {suite.margin:g}, α = {suite.alpha:g} (one-sided); "
            f"per-case {band}"
            + ("" if suite.gate_metric == "clipscore" else f"; gate metric: {suite.gate_metric}")
        )
        tr.write_line("")
        headers, rows, verdicts = headline_rows(suite)
        lines = format_table(headers, rows, "<>>>>>>>><<")
        tr.write_line(lines[0], bold=True)
        tr.write_line(lines[1])
        for line, verdict in zip(lines[2:], verdicts, strict=True):
            tr.write_line(line, **_color(verdict))
        tr.write_line("")
        headers, rows = prompt_rows(suite)
        tr.write_line(
            f"Per-prompt mean CLIPScore (Δ vs {suite.reference.label}; * = drop flagged, "
            "Holm-adjusted; xf = expected to fail):"
        )
        for line in format_table(headers, rows, "<" + ">" * (len(headers) - 1)):
            tr.write_line(line)
        _write_metrics(tr, summary, suite, verbosity)
        _write_metric_gates(tr, suite)
        if verbosity >= 1:
            _write_seed_rows(tr, records, suite)
        _write_power(tr, suite)
        _write_notes(tr, suite)
        _write_legend(tr, suite)
    headline, tone = gate_headline(summary.exit)
    markup = {"pass": {"green": True}, "fail": {"red": True}}.get(tone, {"yellow": True})
    tr.write_line(headline, **markup, bold=True)
    tr.write_line(f"zimage: report {html_path}  (results.jsonl, summary.json beside it)")


def _write_metrics(
    tr: TerminalWriter, summary: RunSummary, suite: SuiteSummary, verbosity: int
) -> None:
    """One column per metric (``-v``: all of them), then a per-prompt table for each further
    reference-free metric (text accuracy: the prompts that declare text)."""
    shown = shown_metrics(summary.metrics, verbose=verbosity >= 1)
    if not shown:
        return
    headers, rows = metric_rows(suite, shown)
    tr.write_line("")
    hidden = len(summary.metrics) - len(shown)
    more = f"; -v adds {hidden} more" if hidden else ""
    tr.write_line(
        f"Metrics (mean; (Δ) paired with {suite.reference.label} for prompt-based ones; "
        f"↑/↓ = which way is better{more}):"
    )
    for line in format_table(headers, rows, "<" + ">" * (len(headers) - 1)):
        tr.write_line(line)
    for info in shown:
        if info.name in ("clipscore",) or info.reference_based:
            continue
        headers, rows = prompt_metric_rows(suite, info)
        if not rows:
            continue
        tr.write_line("")
        tr.write_line(f"Per-prompt mean {info.label}:")
        for line in format_table(headers, rows, "<" + ">" * (len(headers) - 1)):
            tr.write_line(line)


def _write_metric_gates(tr: TerminalWriter, suite: SuiteSummary) -> None:
    """Each gated metric's own decision, when the suite gates on more than one."""
    headers, rows = metric_gate_rows(suite)
    if not rows:
        return
    k = max(g.k for c in suite.configs for g in c.metric_gates.values())
    tr.write_line("")
    tr.write_line(
        f"Gated metrics (each at α/k = {suite.alpha:g}/{k}, Bonferroni; a config is "
        "NON-INFERIOR only if every gated metric is; Δ in each metric's better direction):"
    )
    for line in format_table(headers, rows, "<<<>>>><>"):
        tr.write_line(line)


def _write_seed_rows(
    tr: TerminalWriter, records: Sequence[CaseRecord], suite: SuiteSummary
) -> None:
    configs = [c.key for c in suite.configs]
    labels = [c.label for c in suite.configs]
    cells: dict[tuple[str, int], dict[str, str]] = {}
    for record in records:
        if record.suite != suite.name or record.clipscore is None:
            continue
        text = f"{record.clipscore:.4f}"
        if record.lpips is not None:
            text += f" / {record.lpips:.3f}"
        cells.setdefault((record.prompt, record.seed), {})[record.config] = text
    order = {p.key: i for i, p in enumerate(suite.prompts)}
    rows = [
        [prompt, str(seed), *(cells[(prompt, seed)].get(c, "—") for c in configs)]
        for prompt, seed in sorted(cells, key=lambda k: (order.get(k[0], 0), k[1]))
    ]
    tr.write_line("")
    tr.write_line("Per seed: CLIPScore / LPIPS vs reference")
    for line in format_table(["prompt", "seed", *labels], rows, "<>" + ">" * len(labels)):
        tr.write_line(line)


def _write_power(tr: TerminalWriter, suite: SuiteSummary) -> None:
    headers, rows = power_rows(suite)
    if not rows:
        return
    prior = suite.plan.prior if suite.plan else None
    source = (
        f" (prior {prior.source}: sd_between {prior.sd_between:.4g}, sd_within "
        f"{prior.sd_within:.4g})"
        if prior
        else ""
    )
    tr.write_line("")
    tr.write_line(f"Power, planned before the run{source}; it never grades the verdict:")
    for line in format_table(headers, rows, "<>>><>"):
        tr.write_line(line)


def _write_notes(tr: TerminalWriter, suite: SuiteSummary) -> None:
    notes = list(suite.notes)
    if suite.generations_saved:
        notes.append(f"sequential stages saved {suite.generations_saved} generations")
    for config in suite.configs:
        gate_notes = config.gate.notes if config.gate else ()
        # "plan: ..." notes repeat the power table above
        for note in (*config.notes, *(n for n in gate_notes if not n.startswith("plan: "))):
            notes.append(f"{config.label}: {note}")
        if config.expected_fail_prompts:
            notes.append(
                f"{config.label}: left out of the gate as expected to fail: "
                f"{', '.join(config.expected_fail_prompts)}"
            )
    if notes:
        tr.write_line("")
        for note in notes:
            tr.write_line(f"note: {note}", yellow=True)


def _write_legend(tr: TerminalWriter, suite: SuiteSummary) -> None:
    tr.write_line("")
    tr.write_line("Legend:")
    for entry in legend(suite):
        first, *rest = entry.lines
        tr.write_line(f"  {entry.term}: {first}")
        for line in rest:
            tr.write_line(f"     {line}")
