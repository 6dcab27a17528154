"""The run's summary at session finish, on the controller: built from the records alone
(``summary.build``), then the gate-metric check, the ``--zimage-baseline`` comparison and the
CI blocks, with ``verdicts`` last (it carries the exit status the run will end with).

A usage problem found here (a gate metric the run did not measure, a baseline from another
lane) sets pytest's exit status to 4; the summary is written all the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..baseline import Baseline, Comparison
from ..look_ledger import read_looks, record_looks
from ..metrics import MetricInfo
from ..outcomes import RunVerdicts
from ..records import CaseRecord
from ..suite import Suite
from ..summary.model import Environment, with_identical_images
from ..summary.pool import PoolSummary
from ._ci_blocks import compare_baseline, with_ci_blocks
from ._exit import identical_images_failure, run_verdicts

if TYPE_CHECKING:
    from ..planning import SuitePlan
    from ..settings import Settings
    from ..summary import RunSummary

__all__ = ["RunEnd", "summarize_run"]


@dataclasses.dataclass(frozen=True)
class RunEnd:
    """The summary and what was decided while making it."""

    summary: RunSummary
    verdicts: RunVerdicts
    comparison: Comparison | None = None
    #: why ``--zimage-baseline`` was refused ("" when it was not)
    baseline_refused: str = ""
    #: ``--zimage-gate-metric`` names no metric the gate can use
    gate_metric_error: str | None = None


def summarize_run(
    session: pytest.Session,
    records: Sequence[CaseRecord],
    *,
    suites: Sequence[Suite],
    settings: Settings,
    environment: Mapping[str, Any],
    summary_environment: Environment,
    run_id: str,
    plans: Mapping[str, SuitePlan] | None,
    stopped: str,
    baseline: Baseline | None,
    error_kinds: Mapping[tuple[str, str], str],
    cache_dir: Path | None = None,
) -> RunEnd:
    """Build the run's summary; a usage problem sets ``session.exitstatus`` to 4. With
    ``cache_dir``, the verdicts earlier runs showed (``look_ledger``) name a further look, and
    this run's shown verdicts are recorded there for the next."""
    from ..summary.build import (  # noqa: PLC0415 - scipy only when there is a gate
        build_summary,
        gate_metric_problem,
    )
    from ..summary.gate import shown_looks  # noqa: PLC0415

    names = sorted({r.suite for r in records})
    earlier = {name: read_looks(cache_dir, name) for name in names} if cache_dir else None

    metrics = [MetricInfo.from_dict(m) for m in environment.get("metrics", [])]
    summary = build_summary(
        list(records),
        suites=list(suites),
        settings=settings,
        environment=summary_environment,
        run_id=run_id,
        metrics=metrics,
        plans=plans,
        stopped_early=stopped,
        earlier_looks=earlier,
    )
    if cache_dir is not None:
        for suite_summary in summary.suites:
            looks = shown_looks(suite_summary)
            record_looks(cache_dir, suite_summary.name, looks, run_id=run_id)
    gate_metric_error = gate_metric_problem(settings, metrics) if metrics else None
    if gate_metric_error is not None:
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    comparison: Comparison | None = None
    refused = ""
    if baseline is not None:
        block, comparison, refused = compare_baseline(
            baseline, summary, records, any_lane=settings.baseline_any_lane
        )
        summary = dataclasses.replace(summary, baseline=block)
        if refused and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
    summary = with_ci_blocks(summary, environment, suites)
    summary = with_identical_images(summary, identical_images_failure(records))
    if environment.get("pool"):  # hardware classes, determinism, each server's work
        summary = dataclasses.replace(summary, pool=PoolSummary.from_report(environment["pool"]))
    verdicts = run_verdicts(
        records,
        summary,
        error_kinds=error_kinds,
        status=int(session.exitstatus),
        infra_exit_status=settings.infra_exit_status,
    )
    return RunEnd(
        summary=dataclasses.replace(summary, verdicts=verdicts.to_dict()),
        verdicts=verdicts,
        comparison=comparison,
        baseline_refused=refused,
        gate_metric_error=gate_metric_error,
    )
