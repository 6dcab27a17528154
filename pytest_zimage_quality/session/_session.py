"""``ZImageSession``: the registered plugin object that holds one run's state.

It loads suites for collection, starts the engine when the first zimage test runs, turns an
outcome into a ``CaseRecord`` and a pass/fail, collects records back from test reports (so
the summary and the gate work identically under pytest-xdist, where the controller only sees
reports), writes the run's artifacts and decides the exit status. Its hooks are here; the
jobs they do live in the sibling modules the package docstring lists.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..artifacts import ReportDir, new_run_id
from ..baseline import Baseline, BaselineError, Comparison, load_baseline
from ..collect import NO_HOST_REASON, ZImageItem
from ..errors import ZImageError, ZImageWarning
from ..metrics import ScorerSpec
from ..outcomes import (
    RunVerdicts,
)
from ..records import CaseRecord
from ..report.terminal import write_terminal_summary
from ..suite import Case, Suite
from ..summary.model import Environment
from ..xdist_group import owns_every_case
from ._dirs import RunDirs
from ._engine import RunEngine
from ._environment import (
    environment_summary,
    merge_environment,
)
from ._exit import (
    identical_images_failure,
    settle_exit_status,
    stopped_early,
    write_last_lines,
)
from ._guard import RunGuard
from ._outputs import header_lines, host_lines, write_ci_lines, write_outputs
from ._plan import RunPlan
from ._records import (
    add_error_record,
    base_record,
    check_outcome,
    metric_band_failures,
    progress_printer,
    record_for,
    record_from_report,
)
from ._scorers import check_gate_metric_names
from ._suites import SuiteCatalog
from ._summary import summarize_run
from ._xdist import keep_record, ship_environment

if TYPE_CHECKING:
    from ..checks import CaseBand
    from ..engine import CaseOutcome, Engine
    from ..planning import SuitePlan
    from ..settings import GateParameters, Settings
    from ..summary import RunSummary

__all__ = ["NO_HOST_REASON", "SESSION_KEY", "ZImageSession"]

SESSION_KEY = pytest.StashKey["ZImageSession"]()
_OUTCOME_KEY = pytest.StashKey["CaseOutcome"]()


class ZImageSession:
    """One run's state; its methods named ``pytest_*`` are hooks."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        self.run_id = (
            str(workerinput["zimage_run_id"])
            if workerinput and "zimage_run_id" in workerinput
            else new_run_id(simulated=settings.simulated)
        )
        self._dirs = RunDirs(config, settings, self.run_id, is_worker=self.is_worker)
        self._catalog = SuiteCatalog(settings)
        self.records: dict[tuple[str, str], CaseRecord] = {}
        self.summary: RunSummary | None = None
        self.gate_failed = False
        self.any_zimage_items = False
        self.ran_gate = False
        self._nextitem: pytest.Item | None = None
        #: ``--zimage-baseline``, read before any generation (a bad file is a usage error)
        self.baseline: Baseline | None = None
        self.comparison: Comparison | None = None
        self.baseline_refused = ""
        #: ``--zimage-gate-metric`` names no metric the gate can use (known once scorers are)
        self.gate_metric_error: str | None = None
        if settings.baseline is not None and not self.is_worker:
            try:
                self.baseline = load_baseline(settings.baseline)
            except BaselineError as exc:
                raise pytest.UsageError(f"--zimage-baseline: {exc}") from None
        #: servers and scorer identities, for summary.json (workers send theirs to the controller)
        self.environment: dict[str, Any] = {"servers": [], "scorers": {}}
        #: record key -> outcomes.error_kind of each case that errored (from its report)
        self.error_kinds: dict[tuple[str, str], str] = {}
        self.verdicts: RunVerdicts | None = None
        # The gate's plan, made at collection (docs/gate.md): power, stages, per-case band.
        self._plan = RunPlan(
            config, self._catalog, is_worker=self.is_worker, owns_every_case=owns_every_case(config)
        )
        self._run = RunEngine(config, self._plan, self.environment)
        self._plan.metrics = lambda: [spec.describe() for spec in self._run.metric_specs()]

    @property
    def report_dir(self) -> ReportDir:
        """The run's report directory (only runs that need it create pytest's cache dir)."""
        return self._dirs.report_dir

    @property
    def cache_dir(self) -> Path:
        return self._dirs.cache_dir

    @property
    def has_host(self) -> bool:
        """A pool to generate on: hosts, a hosts file, or servers the run starts itself."""
        s = self.settings
        return bool(s.hosts or s.hosts_file or s.comfyui or s.ray)

    @property
    def xfail_strict(self) -> bool:
        return self.settings.xfail_strict

    # -- suites (_suites) -------------------------------------------------------------------
    def load(self, path: Path) -> Suite:
        """The suite at ``path``, loaded once per run (errors are remembered too)."""
        return self._catalog.load(path)

    def loaded_suites(self) -> list[Suite]:
        """Suites collected in this process, plus those records name (the xdist controller)."""
        return self._catalog.loaded(self.records.values())

    def case_ids(self) -> frozenset[str]:
        return self._catalog.case_ids()

    def suite_cases(self, path: Path) -> tuple[Suite, list[Case]]:
        """The suite at ``path`` and its cases after --zimage-configs/prompts/seeds."""
        return self._catalog.suite_cases(path)

    def gate_for(self, suite: Suite) -> GateParameters:
        return self.settings.gate_for(suite)

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize a Python test's ``zimage_case`` over the cases of --zimage-suite."""
        self._catalog.parametrize(metafunc)

    # -- the plan (_plan) and the engine --------------------------------------------------
    def _plan_run(self, items: list[pytest.Item]) -> dict[str, SuitePlan]:
        return self._plan.plan(items, announce=self.has_host or self.settings.plan)

    def pytest_report_collectionfinish(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> list[str]:
        """The plan, printed after "collected N items" and before any generation."""
        if not (self.has_host or self.settings.plan) or not self._plan.selected(items):
            return []
        return [line for plan in self._plan_run(items).values() for line in plan.lines()]

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if any(isinstance(item, ZImageItem) for item in session.items):
            self.any_zimage_items = True
        self._plan.collected(session.items, plan_now=self.has_host or self.settings.plan)
        suites = {suite.name: suite for suite, _ in self._plan.selected(session.items)}
        runs = self.has_host or self.settings.plan  # without a host the cases are skipped
        if suites and runs and not self.is_worker:  # one usage error before any generation
            self.gate_metric_error = check_gate_metric_names(
                self.config, self.settings, list(suites.values())
            )
            if self.gate_metric_error is not None:
                raise pytest.UsageError(self.gate_metric_error)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        """--zimage-plan: the plan is printed; nothing is generated or run."""
        if not self.settings.plan:
            return None
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"zimage plan: --zimage-plan: {len(session.items)} tests collected, none run, "
                "nothing generated"
            )
        return True

    def band_for(self, suite: Suite) -> CaseBand | None:
        """The per-case band of ``suite``'s candidates (None before collection planned it)."""
        return self._plan.band_for(suite)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        self._nextitem = nextitem

    def engine(self) -> Engine:
        """The running engine, started on first use; a start failure is re-raised every time."""
        return self._run.start(self._open_dirs)

    def _open_dirs(self) -> tuple[ReportDir, Path]:
        self._dirs.prepare()
        return self.report_dir, self.cache_dir

    def scorers(self) -> tuple[Any, Any]:
        """The run's CLIP and LPIPS scorers, built once (hooks may supply their own)."""
        return self._run.make_scorers()

    def metric_specs(self) -> list[ScorerSpec]:
        """Every metric of the run, built once (_scorers.gather_metric_specs)."""
        return self._run.metric_specs()

    # -- running one case -----------------------------------------------------------------
    def setup_case(self, item: ZImageItem) -> None:
        if not self.has_host:
            pytest.skip(NO_HOST_REASON)
        reason, release = self._plan.hold_check(item.case, self.records)
        if reason is not None:
            pytest.skip(reason)
        try:
            engine = self.engine()
        except ZImageError as exc:
            error: ZImageError | None = exc
        else:
            error = None
        if error is not None:  # failed outside the except block: no "during handling" chain
            add_error_record(item, self._base_record(item.suite, item.case), error)
            pytest.fail(str(error), pytrace=False)
        if release:
            engine.request(release)  # the next stage of an undecided config
        nxt = self._nextitem
        if isinstance(nxt, ZImageItem) and self.is_worker:
            engine.request([nxt.case])  # look one test ahead so the server never idles
        self._obtain_in_setup(item)

    def _obtain_in_setup(self, item: ZImageItem) -> None:
        """Generate and score the case in the setup phase: a case that could not be generated
        or scored is a pytest ERROR (E), kept apart from a quality FAILURE (F) in the call."""
        try:
            item.stash[_OUTCOME_KEY] = self.outcome(item.suite, item.case)
        except ZImageError as exc:
            error: ZImageError | None = exc
        else:
            error = None
        if error is not None:
            add_error_record(item, self._base_record(item.suite, item.case), error)
            pytest.fail(str(error), pytrace=False)

    def outcome(self, suite: Suite, case: Case) -> CaseOutcome:
        engine = self.engine()
        verbose = self.config.get_verbosity() >= 1
        outcome = engine.outcome(
            case, poll=progress_printer(self.config, case) if verbose else None
        )
        for note in engine.drain_notes():
            warnings.warn(ZImageWarning(note), stacklevel=2)
        return outcome

    def run_case(self, item: ZImageItem) -> None:
        suite, case = item.suite, item.case
        base = self._base_record(suite, case)
        outcome = item.stash.get(_OUTCOME_KEY, None)
        if outcome is None:  # setup obtained none (a plugin that skipped our setup)
            try:
                outcome = self.outcome(suite, case)
            except ZImageError as exc:
                add_error_record(item, base, exc)
                raise
        band = None if case.is_reference else self.band_for(suite)
        record = self.record_for(base, outcome)
        also = metric_band_failures(
            suite, case, record, self.metric_specs, self._plan.metric_bands(suite)
        )
        check_outcome(item, record, outcome, band, also=also)

    def _base_record(self, suite: Suite, case: Case) -> CaseRecord:
        return base_record(
            suite,
            case,
            gate=self.gate_for(suite),
            band=self.band_for(suite),
            settings=self.settings,
            run_id=self.run_id,
        )

    def record_for(self, base: CaseRecord, outcome: CaseOutcome) -> CaseRecord:
        return record_for(base, outcome)

    # -- reports (controller side) ----------------------------------------------------------
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            if self._plan.sees_every_case:  # it holds stages on its own records
                keep_record(self.records, report)
            return
        if "zimage" in report.keywords:  # the xdist controller collects nothing itself
            self.any_zimage_items = True
        found = record_from_report(report)
        if found is None:
            return
        record, kind = found
        if kind is not None:
            self.error_kinds[record.key] = kind
        self.records[record.key] = record
        self._dirs.append(record, nodeid=report.nodeid)

    def merge_environment(self, other: dict[str, Any]) -> None:
        """Fold a worker's environment into the controller's (first server list wins)."""
        merge_environment(self.environment, other)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._run.finish()
        self._dirs.close()
        if self.is_worker:
            ship_environment(self.config, self.environment)
            return
        if not self.records:
            return
        stopped = self.stopped_early(session, exitstatus)
        records = list(self.records.values())
        end = summarize_run(
            session,
            records,
            suites=self.loaded_suites(),
            settings=self.settings,
            environment=self.environment,
            summary_environment=self.environment_summary(),
            run_id=self.run_id,
            plans=self._plan.plans,
            stopped=stopped,
            baseline=self.baseline,
            error_kinds=self.error_kinds,
            cache_dir=self.cache_dir,
        )
        self.ran_gate = True
        self.summary, self.verdicts = end.summary, end.verdicts
        self.comparison, self.baseline_refused = end.comparison, end.baseline_refused
        self.gate_metric_error = end.gate_metric_error
        write_outputs(
            self.config,
            self.settings,
            self.report_dir,
            self.summary,
            records,
            comparison=self.comparison,
        )
        self.identical_images_error = identical_images_failure(self.records.values())
        self.gate_failed = settle_exit_status(
            session,
            self.summary,
            self.verdicts,
            stopped=stopped,
            infra_exit_status=self.settings.infra_exit_status,
            identical_images_error=self.identical_images_error,
        )

    def stopped_early(self, session: pytest.Session, exitstatus: int) -> str:
        """Why the run stopped before its last case ("" when it did not; _exit.stopped_early)."""
        return stopped_early(
            session,
            exitstatus,
            planned=self._plan.all_planned,
            done=self.records,
            stage_skipped=self._plan.stage_skipped,
        )

    def environment_summary(self) -> Environment:
        """Where this run happened, as plain data for the summary (servers, scorers, versions)."""
        return environment_summary(self.environment, device=self.settings.device)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.settings.plan:
            return
        write_terminal_summary(
            terminalreporter,
            self.summary,
            verbosity=self.config.get_verbosity(),
            records=list(self.records.values()),
            html_path=self.report_dir.html_path if self.summary is not None else Path(),
            has_host=self.has_host,
            any_zimage_items=self.any_zimage_items,
        )
        write_ci_lines(
            terminalreporter,
            self.summary,
            comparison=self.comparison,
            baseline_refused=self.baseline_refused,
        )
        write_last_lines(
            terminalreporter,
            gate_metric_error=self.gate_metric_error,
            identical_images_error=self.identical_images_error,
            verdicts=self.verdicts,
        )

    #: a server that returned one image for everything (_exit.identical_images_failure)
    identical_images_error: str | None = None

    # -- SIGTERM / SIGHUP and the report directory's lock (_guard) -----------------------
    _guard: RunGuard | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """A run that talks to a server stops on SIGTERM/SIGHUP as on Ctrl-C, and (on the
        controller) holds its report directory until it ends."""
        if self.has_host:
            self._guard = RunGuard.start(None if self.is_worker else self._dirs.report_root)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._guard is not None:
            self._guard.release()
            self._guard = None

    def probe_hosts(self) -> list[str]:
        """One line per host for the report header (_outputs.host_lines); not probed for
        --collect-only and on xdist workers."""
        probe = not (self.is_worker or self.config.option.collectonly)
        return host_lines(self.settings, probe=probe)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        if not self.has_host:
            return []  # unrelated runs stay quiet (and create no report directory)
        return header_lines(self.settings, self.probe_hosts, report_root=self.report_dir.root)
