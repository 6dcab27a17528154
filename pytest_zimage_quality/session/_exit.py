"""How a run ends: its exit status, the last lines of its terminal summary, and the gate's
verdict in the JUnit XML.

The exit status is settled in one order (docs/ci.md): pytest's own status, then the gate (an
incomplete run never exits 0; a gate that fails the run exits 1), then
``--zimage-infra-exit-status`` (only infrastructure errors: 75), then a server that returned
one image for everything (always 1). The verdict line printed last says the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from ..identical_images import identical_images_problem
from ..outcomes import INFRA_EXIT_STATUS, RunVerdicts, run_exit_status
from ..records import CaseRecord

if TYPE_CHECKING:
    from ..summary import RunSummary

__all__ = [
    "add_junit_properties",
    "identical_images_failure",
    "run_verdicts",
    "settle_exit_status",
    "stopped_early",
    "write_last_lines",
]


def stopped_early(
    session: pytest.Session,
    exitstatus: int,
    *,
    planned: set[tuple[str, str]],
    done: Iterable[tuple[str, str]],
    stage_skipped: set[tuple[str, str]],
) -> str:
    """Why the run stopped before its last case ("" when it did not): Ctrl-C or SIGTERM
    (``KeyboardInterrupt``, exit status 2), -x / --maxfail (``session.shouldfail``), or a
    plugin's ``session.shouldstop``. A stop after the last planned case is no early stop."""
    why = ""
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        why = str(session.shouldstop or "interrupted")
    elif session.shouldfail or session.shouldstop:
        why = str(session.shouldfail or session.shouldstop)
    if not why:
        return ""
    left = planned - set(done) - stage_skipped
    return why if left or not planned else ""


def exit_status_for(status: int, verdicts: RunVerdicts, *, infra_exit_status: bool) -> int:
    """``--zimage-infra-exit-status``: a run that met only infrastructure errors (no quality
    failure, no config judged worse) exits 75, so CI can retry it."""
    return run_exit_status(
        status,
        counts=verdicts.counts,
        error_kinds=verdicts.error_kinds.values(),
        quality_failed_configs=sum(v == "failed" for v in verdicts.configs.values()),
        enabled=infra_exit_status,
    )


def run_verdicts(
    records: Iterable[CaseRecord],
    summary: RunSummary,
    *,
    error_kinds: Mapping[tuple[str, str], str],
    status: int,
    infra_exit_status: bool,
) -> RunVerdicts:
    """summary.json's ``verdicts`` block, with the exit status the run will end with (pytest's
    ``status`` so far, then the gate's effect on it)."""
    from ..summary.verdicts import summarize_verdicts  # noqa: PLC0415 - end of run only

    verdicts = summarize_verdicts(records, summary, error_kinds=error_kinds)
    if status == pytest.ExitCode.OK and summary.exit.stopped_early:
        status = int(pytest.ExitCode.INTERRUPTED)
    elif status == pytest.ExitCode.OK and summary.exit.fails_run:
        status = int(pytest.ExitCode.TESTS_FAILED)
    return dataclasses.replace(
        verdicts,
        exit_status=exit_status_for(status, verdicts, infra_exit_status=infra_exit_status),
        infra_exit_status=infra_exit_status,
        stopped_early=summary.exit.stopped_early,
    )


def identical_images_failure(records: Iterable[CaseRecord]) -> str | None:
    """Every image of the run byte-identical across prompts/seeds: a broken server, not a
    perfect model (identical_images); the run then fails whatever the cases and gate said."""
    return identical_images_problem(
        (r.prompt, r.seed, r.image_sha256) for r in records if r.image_sha256
    )


def settle_exit_status(
    session: pytest.Session,
    summary: RunSummary,
    verdicts: RunVerdicts | None,
    *,
    stopped: str,
    infra_exit_status: bool,
    identical_images_error: str | None,
) -> bool:
    """Set ``session.exitstatus`` after the gate, in the order the module docstring gives;
    True when the gate (not a test) failed the run."""
    gate_failed = False
    if session.exitstatus == pytest.ExitCode.OK:
        if stopped:  # an incomplete run never exits 0, advisory or not
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif summary.exit.fails_run:
            gate_failed = True
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if verdicts is not None:
        session.exitstatus = exit_status_for(
            int(session.exitstatus), verdicts, infra_exit_status=infra_exit_status
        )
    if identical_images_error is not None and session.exitstatus in (
        pytest.ExitCode.OK,
        INFRA_EXIT_STATUS,
    ):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return gate_failed


def write_last_lines(
    terminalreporter: Any,
    *,
    gate_metric_error: str | None,
    identical_images_error: str | None,
    verdicts: RunVerdicts | None,
) -> None:
    """The terminal summary's closing lines; the verdict line is the very last, with errors
    and failures counted apart."""
    if gate_metric_error is not None:
        terminalreporter.write_line(f"zimage usage error: {gate_metric_error}", red=True)
    if identical_images_error is not None:
        terminalreporter.write_line(
            f"zimage: FAILED — {identical_images_error}", red=True, bold=True
        )
    if verdicts is not None and gate_metric_error is not None:
        # exit 4: the gate could not run on the metric asked for; never read as PASSED
        terminalreporter.write_line(
            "zimage verdict: USAGE ERROR — "
            + verdicts.last_line().split(" — ", 1)[-1]
            + "; the gate did not run on the metric asked for (the line above)",
            red=True,
            bold=True,
        )
    elif verdicts is not None:
        verdict = verdicts.verdict
        terminalreporter.write_line(
            verdicts.last_line(),
            green=verdict == "passed",
            red=verdict == "failed",
            yellow=verdict == "error",
            bold=True,
        )


def add_junit_properties(config: pytest.Config, summary: RunSummary) -> None:
    """The gate's verdict in the JUnit XML's testsuite properties (ADVISORY included)."""
    xml = next(
        (
            plugin
            for plugin in config.pluginmanager.get_plugins()
            if callable(getattr(plugin, "add_global_property", None))
        ),
        None,
    )
    if xml is None:
        return
    from ..report.vocabulary import gate_headline, verdict_label  # noqa: PLC0415

    exit_ = summary.exit
    mode = "ADVISORY" if exit_.advisory else "applied" if exit_.gate_applied else "not applied"
    xml.add_global_property("zimage_gate", gate_headline(exit_)[0])
    xml.add_global_property("zimage_gate_mode", mode)
    for name, decision in exit_.decisions.items():
        xml.add_global_property(f"zimage_decision_{name}", verdict_label(decision))
    for suite in summary.suites:  # each gated metric's own decision ([gate.metrics.<name>])
        for row in suite.configs:
            name = f"{suite.name}/{row.label}" if len(summary.suites) > 1 else row.label
            for metric, entry in row.metric_gates.items():
                xml.add_global_property(
                    f"zimage_metric_gate_{name}_{metric}", verdict_label(entry.decision)
                )
