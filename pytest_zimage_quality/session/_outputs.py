"""What a finished run writes beside summary.json: report.html (with ``--zimage-history``),
the Markdown PR summary, and the CI lines of the terminal summary; and, before the run, the
report header's line per host.

Each output is rendered by ``report/``; this module decides where it goes and keeps a failed
write a warning (the results on disk are never lost over a report).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..artifacts import ReportDir
from ..baseline import BaselineError, Comparison
from ..errors import ZImageError, ZImageWarning
from ..hardware import HardwareProfile, class_lines, classify
from ..records import CaseRecord
from ..report.ci_views import noise_floor_text
from ..report.comparison import comparison_lines, provenance_lines, speed_memory_lines
from ..report.markdown import STEP_SUMMARY_ENV, append_step_summary, render_markdown, write_markdown
from ..report.terminal import report_header
from ..servers import stats_body
from ._exit import add_junit_properties

if TYPE_CHECKING:
    from ..settings import Settings
    from ..summary import RunSummary

__all__ = [
    "header_lines",
    "host_lines",
    "store_history",
    "write_ci_lines",
    "write_html",
    "write_outputs",
    "write_pr_summary",
]


def write_outputs(
    config: pytest.Config,
    settings: Settings,
    report_dir: ReportDir,
    summary: RunSummary,
    records: Sequence[CaseRecord],
    *,
    comparison: Comparison | None,
) -> None:
    """Everything a finished run writes from its summary: summary.json, report.html (with
    the history), the Markdown summary and the JUnit XML's gate properties."""
    report_dir.write_summary(summary.to_dict())
    write_html(report_dir, summary, records, history_dir=settings.history, run_id=report_dir.run_id)
    write_pr_summary(
        settings, summary, records, comparison=comparison, report_path=report_dir.html_path
    )
    add_junit_properties(config, summary)


def write_html(
    report_dir: ReportDir,
    summary: RunSummary,
    records: Sequence[CaseRecord],
    *,
    history_dir: Path | None,
    run_id: str,
) -> None:
    """report.html, with the history chart when ``--zimage-history`` names a directory."""
    from ..report.html import write_html_report  # noqa: PLC0415 - jinja2 only at the end

    history, notes = store_history(history_dir, summary, run_id)
    try:
        write_html_report(report_dir, summary, list(records), history=history, history_notes=notes)
    except OSError as exc:
        warnings.warn(ZImageWarning(f"could not write report.html: {exc}"), stacklevel=1)


def store_history(
    directory: Path | None, summary: RunSummary, run_id: str
) -> tuple[dict[tuple[str, str], list[Any]], list[str]]:
    """``--zimage-history DIR``: store this run's summary.json there, then each config's
    Δ and verdict across the stored runs (a broken stored file is a note, never a stop)."""
    if directory is None:
        return {}, []
    from ..baseline import load_history  # noqa: PLC0415 - end of run only
    from ..cache import write_atomic  # noqa: PLC0415

    data = summary.to_dict()
    try:
        write_atomic(
            Path(directory) / f"{run_id}.json",
            json.dumps(data, indent=1, sort_keys=True).encode("utf-8"),
        )
        return load_history(directory, current=data)
    except (OSError, BaselineError) as exc:
        return {}, [f"history: {exc}"]


def write_pr_summary(
    settings: Settings,
    summary: RunSummary,
    records: Sequence[CaseRecord],
    *,
    comparison: Comparison | None,
    report_path: Path,
) -> None:
    """The PR summary: to ``--zimage-markdown``, and appended to GitHub Actions' job
    summary when the job names one (unless ``--zimage-step-summary=no``)."""
    step = settings.step_summary and bool(os.environ.get(STEP_SUMMARY_ENV))
    if settings.markdown is None and not step:
        return
    text = render_markdown(
        summary, records=list(records), comparison=comparison, report_path=str(report_path)
    )
    try:
        if settings.markdown is not None:
            write_markdown(settings.markdown, text)
        if step:
            append_step_summary(text)
    except OSError as exc:
        warnings.warn(ZImageWarning(f"could not write the Markdown summary: {exc}"), stacklevel=1)


def write_ci_lines(
    terminalreporter: Any,
    summary: RunSummary | None,
    *,
    comparison: Comparison | None,
    baseline_refused: str,
) -> None:
    """The terminal summary's CI lines after the tables: the pool's hardware classes and
    servers, the baseline comparison, speed and memory, the noise floor, the lane."""
    if summary is not None and summary.pool is not None:
        for line in summary.pool.terminal_lines():
            terminalreporter.write_line(line)
    for line, markup in comparison_lines(comparison, baseline_refused):
        terminalreporter.write_line(line, **markup)
    for line in speed_memory_lines(summary):
        terminalreporter.write_line(line)
    floor = noise_floor_text(summary) if summary is not None else None
    if floor:
        terminalreporter.write_line(f"zimage {floor}", yellow="WARNING" in floor)
    for line in provenance_lines(summary):
        terminalreporter.write_line(line, yellow="regenerated" in line)


#: how ``host_lines`` starts a hardware class's line (``hardware.class_lines``)
CLASS_LINE = "hardware class "


def header_lines(
    settings: Settings, probe_hosts: Callable[[], list[str]], *, report_root: Path
) -> list[str]:
    """pytest's report header for a run with hosts: a plan contacts no server, a dry run
    has none to probe, else ``probe_hosts`` gives one line per host."""
    if settings.plan:  # a plan needs no server
        hosts = [f"{host} (not contacted: --zimage-plan)" for host in settings.hosts]
    else:
        hosts = [] if settings.simulated else probe_hosts()
    classes = [line for line in hosts if line.startswith(CLASS_LINE)]
    hosts = [line for line in hosts if not line.startswith(CLASS_LINE)]
    lines = report_header(settings, host_lines=hosts, report_root=report_root)
    return lines[: len(hosts)] + [f"zimage: {line}" for line in classes] + lines[len(hosts) :]


def host_lines(settings: Settings, *, probe: bool = True) -> list[str]:
    """One line per host for the report header: its ComfyUI version, GPU and VRAM.

    A quick ``/system_stats`` per host (no retries); the run itself connects later, when
    its first test starts. Without ``probe``, only the hosts' addresses.
    """
    if not probe:
        return [str(host) for host in settings.hosts]
    from ..comfyui import ComfyUIClient  # noqa: PLC0415 - httpx only when a host is given

    lines, profiles = [], []
    for host in settings.hosts:
        url = str(host)  # the password, if any, redacted
        client = ComfyUIClient(
            host, headers=settings.headers, timeout=10, use_websocket=False, retries=0
        )
        try:
            info = client.connect()
        except ZImageError as exc:
            lines.append(f"{url}: not reachable now ({exc.message})")
            continue
        except Exception as exc:  # a header must never break the session
            lines.append(f"{url}: not reachable now ({type(exc).__name__}: {exc})")
            continue
        finally:
            client.close()
        device = info.devices[0] if info.devices else None
        vram = (
            f", VRAM {device.vram_total / 2**30:.1f} GiB ({device.vram_free / 2**30:.1f} free)"
            if device and device.vram_total
            else ""
        )
        lines.append(f"{url}: ComfyUI {info.comfyui_version}, {info.gpu_name}{vram}")
        profiles.append(HardwareProfile.from_system_stats(url, stats_body(info)))
    # one line per hardware class (the run's own classes also weigh the model files)
    return lines + class_lines(classify(profiles), with_id=False)
