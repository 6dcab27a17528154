"""The run's suites, loaded once each: collection asks for a suite file's cases, a Python
test's ``zimage_case`` is parametrized over ``--zimage-suite``, and the summary wants every
suite the records name (on the xdist controller, which collected none itself)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..collect import xfail_marker
from ..errors import SuiteError, ZImageError
from ..records import CaseRecord
from ..suite import Case, Suite, load_suite

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["SuiteCatalog"]


class SuiteCatalog:
    """Suites by resolved path, loaded on first use; a suite's error is remembered too, so
    a broken file is reported once per run, the same way each time."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._suites: dict[Path, Suite] = {}
        self._errors: dict[Path, ZImageError] = {}

    def suites(self) -> list[Suite]:
        """The suites loaded so far."""
        return list(self._suites.values())

    def load(self, path: Path) -> Suite:
        """The suite at ``path``, loaded once per run (errors are remembered too)."""
        path = Path(path).resolve()
        if path in self._errors:
            raise self._errors[path]
        if path not in self._suites:
            try:
                self._suites[path] = load_suite(path)
            except SuiteError as exc:
                self._errors[path] = exc
                raise
        return self._suites[path]

    def loaded(self, records: Iterable[CaseRecord]) -> list[Suite]:
        """Suites collected in this process, plus those ``records`` name (the xdist
        controller)."""
        for record in records:
            if record.suite_path:
                try:
                    self.load(Path(record.suite_path))
                except ZImageError:
                    continue
        return self.suites()

    def suite_cases(self, path: Path) -> tuple[Suite, list[Case]]:
        """The suite at ``path`` and its cases after --zimage-configs/prompts/seeds."""
        suite = self.load(path)
        try:
            cases = suite.cases(
                configs=self.settings.configs,
                prompts=self.settings.prompts,
                seeds=self.settings.seeds_for(suite),
            )
        except KeyError as exc:
            raise SuiteError(
                f"{exc.args[0]} in --zimage-configs / --zimage-prompts",
                path=str(suite.path),
                hint="use keys the suite defines (they are the test ids' parts)",
            ) from None
        return suite, cases

    def case_ids(self) -> frozenset[str]:
        """The case ids a Python test's ``zimage_case`` is parametrized over (--zimage-suite),
        for the xdist scheduler; a suite that does not load yields none here (its error comes
        at collection)."""
        if self.settings.suite_path is None:
            return frozenset()
        try:
            return frozenset(case.id for case in self.suite_cases(self.settings.suite_path)[1])
        except ZImageError:
            return frozenset()

    def parametrize(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize a Python test's ``zimage_case`` over the cases of --zimage-suite."""
        if self.settings.suite_path is None:
            raise pytest.Collector.CollectError(
                f"{metafunc.definition.nodeid} uses the zimage_case fixture but no suite is "
                "configured\n  hint: pass --zimage-suite=PATH or set zimage_suite in the ini file"
            )
        try:
            _, cases = self.suite_cases(self.settings.suite_path)
        except ZImageError as exc:
            raise pytest.Collector.CollectError(str(exc)) from None
        params = []
        for case in cases:
            marks = []
            if case.expected_fail is not None:
                marks.append(
                    xfail_marker(
                        case, default_strict=self.settings.xfail_strict, raises=AssertionError
                    )
                )
            params.append(pytest.param(case, id=case.id, marks=marks))
        metafunc.parametrize("zimage_case", params, indirect=True)
