"""One case's ``CaseRecord``, from pytest's side: built from the suite, the case and the
engine's outcome, checked against its band, and carried in the test report's
``user_properties`` (so it survives pytest-xdist and lands in JUnit XML).

A case that could not be generated or scored carries an error record instead; the report's
outcome (passed, failed, error, xfailed, xpassed) is read back on the controller.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pytest

from ..checks import CheckResult, check_record
from ..collect import QualityFailure
from ..errors import ZImageError
from ..metric_gates import band_failures
from ..metrics import ScorerSpec
from ..outcomes import ERROR_KIND_PROPERTY, VERDICT_PROPERTY, error_properties
from ..records import CaseRecord
from ..suite import Case, Suite

if TYPE_CHECKING:
    from ..checks import CaseBand
    from ..engine import CaseOutcome
    from ..settings import GateParameters, Settings

__all__ = [
    "add_error_record",
    "base_record",
    "check_outcome",
    "metric_band_failures",
    "outcome_of",
    "progress_printer",
    "record_for",
    "record_from_report",
]


def base_record(
    suite: Suite,
    case: Case,
    *,
    gate: GateParameters,
    band: CaseBand | None,
    settings: Settings,
    run_id: str,
) -> CaseRecord:
    """What is known of a case before its image: ids, role, tolerance (the planned band's
    width, else the gate's tolerance) and the run it belongs to."""
    tolerance = band.width if band is not None else gate.tolerance
    return CaseRecord(
        suite=suite.name,
        case_id=case.id,
        prompt=case.prompt.key,
        prompt_text=case.prompt.text,
        config=case.config.key,
        config_label=case.config.label,
        seed=case.seed,
        reference=case.reference,
        role="reference" if case.is_reference else "candidate",
        tolerance=None if case.is_reference else tolerance,
        # Random weights put CLIPScore on no meaningful absolute scale: no floor then.
        clip_floor=gate.clip_floor if case.is_reference and not settings.random_weights else None,
        expected_fail=case.expected_fail.reason if case.expected_fail else "",
        run_id=run_id,
        suite_path=str(suite.path),
        simulated=settings.simulated,
        random_weights=settings.random_weights,
    )


def record_for(base: CaseRecord, outcome: CaseOutcome) -> CaseRecord:
    """``base`` with the outcome's image, scores and timings."""
    gen, scores, ref = outcome.generated, outcome.scores, outcome.reference
    clip = scores.clipscore
    ref_clip = ref.scores.clipscore if ref else None
    # A candidate's reference-free metrics pair with its reference image's values.
    ref_metrics = (
        {k: v for k, v in ref.scores.metrics.items() if k in scores.metrics} if ref else {}
    )
    return base.with_(
        clipscore=clip,
        reference_clipscore=ref_clip,
        delta=clip - ref_clip if clip is not None and ref_clip is not None else None,
        lpips=scores.lpips,
        metrics=dict(scores.metrics),
        reference_metrics=ref_metrics,
        details=dict(scores.details),
        image_path=str(outcome.image_path),
        reference_image_path=str(ref.image_path) if ref else "",
        image_sha256=gen.sha256,
        width=scores.width,
        height=scores.height,
        wall_seconds=gen.wall_seconds,
        server_seconds=gen.server_seconds,
        cached=gen.cached,
        host=gen.host,
        prompt_id=gen.prompt_id,
        graph_hash=outcome.job.graph_hash,
    )


def add_error_record(item: pytest.Item, base: CaseRecord, error: ZImageError) -> None:
    """Put the error record of a case that could not be generated or scored (and its error
    kind, infrastructure or setup) into the item's report."""
    item.user_properties.extend(base.with_(check="error", message=str(error)).to_properties())
    item.user_properties.extend(error_properties(error))


def check_outcome(
    item: pytest.Item,
    record: CaseRecord,
    outcome: CaseOutcome,
    band: CaseBand | None,
    *,
    also: Sequence[str] = (),
) -> None:
    """Check the scored ``record`` against its ``band`` (None: a reference), put it into the
    item's report, and raise ``QualityFailure`` (a test failure, no traceback) when worse.
    ``also``: further failures found by the caller (a gated metric's per-case band)."""
    result = check_record(record, blank=outcome.scores.blank, band=band)
    if also:
        message = "\n".join([result.message, *also] if result.message else also)
        result = CheckResult(False, message)
    record = record.with_(check="pass" if result.passed else "fail", message=result.message)
    item.user_properties.extend(record.to_properties())
    item.user_properties.append((VERDICT_PROPERTY, "passed" if result.passed else "failed"))
    if not result.passed:
        raise QualityFailure(result.message)


def metric_band_failures(
    suite: Suite,
    case: Case,
    record: CaseRecord,
    specs: Callable[[], Sequence[ScorerSpec]],
    bands: Mapping[str, CaseBand] | None = None,
) -> list[str]:
    """A candidate outside a further gated metric's per-case band ([gate.metrics.<name>]
    band; metric_gates.band_failures): ``specs`` gives the run's metrics' directions,
    ``bands`` each band as the plan sized it (a scaled band is checked only with it)."""
    if case.is_reference or not any(g.has_band for g in suite.metric_gates):
        return []
    known = specs()
    return band_failures(
        record,
        case.prompt,
        suite.metric_gates,
        higher_is_better={s.name: s.higher_is_better for s in known},
        labels={s.name: s.label for s in known},
        bands=bands,
    )


def progress_printer(config: pytest.Config, case: Case) -> Any:
    """A callback printing the case's generation progress (``-v``), through pytest's
    capture, each distinct step once."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    last: list[str | None] = [None]

    def show(progress: str | None) -> None:
        if reporter is None or progress is None or progress == last[0]:
            return
        last[0] = progress
        line = f"    zimage: {case.id}: {progress}"
        if capture is not None:
            with capture.global_and_fixture_disabled():
                reporter.write_line(line)
        else:
            reporter.write_line(line)

    return show


def outcome_of(report: pytest.TestReport) -> str:
    """The record's ``outcome`` from its test report."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.when == "setup" and report.failed:
        return "error"
    return str(report.outcome)


def record_from_report(report: pytest.TestReport) -> tuple[CaseRecord, str | None] | None:
    """The case record a test report carries, with the report's outcome, and its error kind
    (None when the case did not error); None for reports that carry no record (other tests,
    teardown, a setup that passed: its record comes with the call)."""
    if not (report.when == "call" or (report.when == "setup" and report.failed)):
        return None
    record = CaseRecord.from_properties(report.user_properties)
    if record is None:
        return None
    kind = dict(report.user_properties).get(ERROR_KIND_PROPERTY)
    return record.with_(outcome=outcome_of(report)), kind if isinstance(kind, str) else None
