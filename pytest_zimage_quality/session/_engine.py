"""The run's engine and scorers, from pytest's side: started when the first zimage test
needs them (so collection, ``--help`` and unrelated runs pay nothing), a start failure
remembered and re-raised for every later case, and everything closed at session finish."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..artifacts import ReportDir
from ..errors import ZImageError
from ..generation import read_estimates, write_estimates
from ..metrics import ScorerSpec
from ._environment import capture_environment, start_vram_sampling
from ._plan import RunPlan
from ._scorers import check_scorer_weights, gather_metric_specs, make_scorers

if TYPE_CHECKING:
    from ..engine import Engine
    from ..settings import Settings

__all__ = ["RunEngine"]


class RunEngine:
    """One run's engine, CLIP/LPIPS scorers, metric specs and VRAM samplers."""

    def __init__(self, config: pytest.Config, plan: RunPlan, environment: dict[str, Any]) -> None:
        self.config = config
        self.plan = plan
        self.settings: Settings = plan.settings
        #: the session's environment dict: the metrics are written there once known
        self.environment = environment
        self.engine: Engine | None = None
        self._error: ZImageError | None = None
        self.scorers: tuple[Any, Any] | None = None
        self.specs: list[ScorerSpec] | None = None
        self._samplers: list[Any] = []

    def start(self, open_dirs: Callable[[], tuple[ReportDir, Path]]) -> Engine:
        """The running engine, started on first use (``open_dirs`` prepares the report and
        image cache directories); a start failure is re-raised every time."""
        if self._error is not None:
            raise self._error
        if self.engine is None:
            from ..cache import ImageCache  # noqa: PLC0415 - not needed at plugin load
            from ..engine import Engine  # noqa: PLC0415

            report_dir, cache_dir = open_dirs()
            engine = Engine(
                self.settings,
                report_dir=report_dir,
                cache=ImageCache(cache_dir),
                # the speeds learnt in earlier runs, per hardware class (pytest's cache)
                estimates=read_estimates(getattr(self.config, "cache", None)),
            )
            suites = self.plan.catalog.suites()
            try:
                engine.start(
                    suites,
                    # a staged suite starts with stage 1; later stages are released by setup_case
                    self.plan.first_cases(),
                    before_generating=lambda: check_scorer_weights(self.config, self.settings),
                )
                engine.provide_scorers(self.metric_specs)  # built while the server generates
            except BaseException as exc:
                error = (
                    exc
                    if isinstance(exc, ZImageError)
                    else ZImageError(
                        f"starting the run failed: {type(exc).__name__}: {exc}",
                        hint="this is a bug in pytest-zimage-quality or its environment; please report it",
                    )
                )
                self._error = error
                engine.close(cancel=True)
                if isinstance(exc, ZImageError | Exception):
                    raise error from exc
                raise
            self.engine = engine
            self._samplers = start_vram_sampling(
                engine, interval=self.settings.vram_interval, multi_suite=len(suites) > 1
            )
        return self.engine

    def make_scorers(self) -> tuple[Any, Any]:
        """The run's CLIP and LPIPS scorers, built once (hooks may supply their own)."""
        if self.scorers is None:
            self.scorers = make_scorers(self.config, self.settings)
        return self.scorers

    def metric_specs(self) -> list[ScorerSpec]:
        """Every metric of the run, built once (_scorers.gather_metric_specs)."""
        if self.specs is None:
            specs = gather_metric_specs(
                self.config, self.settings, self.make_scorers(), self.plan.catalog.suites()
            )
            self.specs = specs
            self.environment["metrics"] = [spec.describe().to_dict() for spec in specs]
        return self.specs

    def finish(self) -> None:
        """Gather the environment (servers, VRAM peaks, rechecked pairs, scorer identities),
        then close the engine, cancelling what the servers still hold."""
        capture_environment(
            self.environment,
            samplers=self._samplers,
            engine=self.engine,
            specs=self.specs,
            scorers=self.scorers,
            simulated=self.settings.simulated,
        )
        self._samplers = []
        generation = self.engine.generation if self.engine is not None else None
        if generation is not None:  # summary.json's pool blocks; the next run's estimates
            self.environment["pool"] = generation.report()
            write_estimates(getattr(self.config, "cache", None), generation.class_estimates())
        if self.engine is not None:
            self.engine.close(cancel=True)
