"""The gate's plan for the run, made at collection before anything is generated
(docs/gate.md): each suite's power, stages and per-case band, and the stage hold that keeps
stage k+1 of a config back until its looks through stage k leave it undecided."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import pytest

from ..collect import ZImageItem
from ..errors import ZImageError, ZImageWarning
from ..metrics import MetricInfo
from ..records import CaseRecord
from ..suite import Case, Suite
from ._suites import SuiteCatalog

if TYPE_CHECKING:
    from ..checks import CaseBand
    from ..planning import SuitePlan
    from ..settings import Settings
    from ..stages import StageHold
    from ..stats import VariancePrior

__all__ = ["RunPlan", "record_warning"]


class RunPlan:
    """The selected cases, each suite's plan, and the stage hold (controller only)."""

    def __init__(
        self,
        config: pytest.Config,
        catalog: SuiteCatalog,
        *,
        is_worker: bool,
        owns_every_case: bool = False,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.settings: Settings = catalog.settings
        self.is_worker = is_worker
        #: an xdist worker that, if it runs any zimage case, runs all of them (xdist_group):
        #: it plans, queues ahead and holds stages as a run without -n does
        self.sees_every_case = not is_worker or owns_every_case
        #: None until collection planned the run
        self.plans: dict[str, SuitePlan] | None = None
        self.hold: StageHold | None = None
        #: the cases to generate from the start (none on an xdist worker: it plans on demand)
        self.planned: list[tuple[Suite, Case]] = []
        #: keys of every selected case, and of those the hold skipped (decided configs)
        self.all_planned: set[tuple[str, str]] = set()
        self.stage_skipped: set[tuple[str, str]] = set()
        self._prior: dict[str | None, VariancePrior] | None = None
        #: the run's metrics once its scorers exist (the session sets it): the hold decides on
        #: each suite's gate metric, not always CLIPScore
        self.metrics: Callable[[], Sequence[MetricInfo]] = list
        if self.settings.prior is not None:
            from ..planning import load_prior  # noqa: PLC0415 - scipy only when a prior is given

            try:
                self._prior = load_prior(self.settings.prior)
            except ZImageError as exc:
                raise pytest.UsageError(str(exc)) from None

    def selected(self, items: list[pytest.Item]) -> list[tuple[Suite, Case]]:
        """The (suite, case) of each zimage item and each Python test using ``zimage_case``."""
        planned: list[tuple[Suite, Case]] = []
        for item in items:
            if isinstance(item, ZImageItem):
                planned.append((item.suite, item.case))
            elif "zimage_result" in getattr(item, "fixturenames", ()):
                case = getattr(getattr(item, "callspec", None), "params", {}).get("zimage_case")
                if isinstance(case, Case) and self.settings.suite_path is not None:
                    planned.append((self.catalog.load(self.settings.suite_path), case))
        return planned

    def plan(self, items: list[pytest.Item], *, announce: bool) -> dict[str, SuitePlan]:
        """Each suite's plan (power from the prior, stages, per-case band), made once before
        anything is generated; below the target power it warns when ``announce`` (the run
        goes on)."""
        if self.plans is None:
            from ..planning import plan_suites  # noqa: PLC0415 - scipy only for zimage runs
            from ..stages import StageHold  # noqa: PLC0415

            selected = self.selected(items)
            self.plans = plan_suites(selected, self.settings, prior_file=self._prior)
            self.all_planned = {case.key for _, case in selected}
            if self.sees_every_case:  # a worker with a share of the cases cannot hold
                self.hold = StageHold(
                    self.plans,
                    [case for _, case in selected],
                    metric_for=self._gate_metric,
                    measured=self._measured,
                )
            if announce and not self.is_worker:
                for plan in self.plans.values():
                    for warning in plan.warnings():
                        record_warning(self.config, warning)
        return self.plans

    def _gate_metric(self, suite_name: str) -> MetricInfo | None:
        """``suite_name``'s gate metric as this run measures it (None: not measured)."""
        from ..summary.build import gate_metric_of  # noqa: PLC0415 - with the hold only

        suite = next((s for s in self.catalog.suites() if s.name == suite_name), None)
        try:
            measured = list(self.metrics())
        except ZImageError:
            return None  # no scorers: the cases error, the hold has nothing to decide on
        return gate_metric_of(suite, measured, self.settings)

    def _measured(self) -> Sequence[MetricInfo]:
        """The run's metrics (none without scorers): where further gated metrics are found."""
        try:
            return list(self.metrics())
        except ZImageError:
            return []

    def collected(self, items: list[pytest.Item], *, plan_now: bool) -> None:
        """After collection: plan the run when it will generate (``plan_now``; with no host
        every case skips), and remember what to generate from the start."""
        planned = self.selected(items)
        if planned and plan_now:
            self.plan(items, announce=True)
        # An xdist worker with a share of the items it cannot know in advance plans on demand;
        # with the cases grouped, only the worker that runs them starts an engine (on first use).
        self.planned = planned if self.sees_every_case else []

    def first_cases(self) -> list[Case]:
        """What the engine generates from the start: a staged suite's stage 1 (later stages
        are released by ``hold_check``), else every planned case."""
        if self.hold is not None:
            return self.hold.first()
        return [case for _, case in self.planned]

    def hold_check(
        self, case: Case, records: Mapping[tuple[str, str], CaseRecord]
    ) -> tuple[str | None, list[Case]]:
        """Why ``case`` is skipped (None: it runs), and the cases its stage now releases."""
        if self.hold is None:
            return None, []
        reason, release = self.hold.check(case, records)
        if reason is not None:
            self.stage_skipped.add(case.key)
        return reason, release

    def band_for(self, suite: Suite) -> CaseBand | None:
        """The per-case band of ``suite``'s candidates (None before collection planned it)."""
        plan = (self.plans or {}).get(suite.name)
        return plan.band if plan is not None else None

    def metric_bands(self, suite: Suite) -> dict[str, CaseBand]:
        """Each further gated metric's per-case band as the plan sized it."""
        plan = (self.plans or {}).get(suite.name)
        further = plan.further if plan is not None else ()
        return {g.metric: g.band for g in further if g.band is not None}


def record_warning(config: pytest.Config, text: str) -> None:
    """A ZImageWarning in pytest's warnings summary that never stops the run: it is
    recorded, not raised, so ``filterwarnings = error`` cannot turn a plan into a crash."""
    message = warnings.WarningMessage(ZImageWarning(text), ZImageWarning, __file__, 0)
    config.hook.pytest_warning_recorded.call_historic(
        kwargs={"warning_message": message, "when": "collect", "nodeid": "", "location": None}
    )
