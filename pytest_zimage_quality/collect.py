"""Collection: a suite file becomes one pytest item per (prompt, config, seed).

Suite files are collected by name: any ``zimage*.toml`` file under the paths pytest
collects (e.g. ``example_suite/zimage_turbo.toml``). Python tests that request the
``zimage_case`` fixture are parametrized over the cases of ``--zimage-suite``.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from .errors import ZImageError

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from .settings import Settings
    from .suite import Case, Suite

__all__ = [
    "SUITE_FILE_PATTERN",
    "CaseRunner",
    "QualityFailure",
    "SuiteFile",
    "ZImageItem",
    "gate_mode",
    "is_suite_file",
    "order_by_stage",
]

#: The file-name rule for suite files.
SUITE_FILE_PATTERN = "zimage*.toml"


def is_suite_file(path: Path) -> bool:
    return fnmatch(path.name, SUITE_FILE_PATTERN)


def gate_mode(settings: Settings) -> str:
    """How the gate counts in this run: ADVISORY (shown, never sets the exit status), "not
    applied" (random weights: not a quality measurement), else "applied"."""
    if settings.advisory:
        return "ADVISORY"
    return "not applied" if settings.random_weights else "applied"


def _case_of(item: pytest.Item) -> Case | None:
    """The zimage case an item runs: a suite file's item, or a test parametrized over
    ``zimage_case`` (``--zimage-suite``)."""
    if isinstance(item, ZImageItem):
        return item.case
    case = getattr(getattr(item, "callspec", None), "params", {}).get("zimage_case")
    return case if hasattr(case, "prompt") and hasattr(case, "config") else None


def order_by_stage(items: list[pytest.Item]) -> None:
    """Put the zimage items stage-major again, in place, after every plugin reordered them.

    The stage hold decides a config's stage k+1 from its finished stage-k cases, so every
    stage-k case must run before any stage-(k+1) case; a plugin that shuffles (pytest-randomly)
    or sorts the items would otherwise release every stage. The sort is stable and touches only
    the zimage items' slots: within a stage, and for every other test, the order the other
    plugins chose stays.
    """
    slots = [(index, case) for index, item in enumerate(items) if (case := _case_of(item))]
    if len({case.prompt.stage for _, case in slots}) < 2:
        return
    ordered = sorted(slots, key=lambda slot: slot[1].prompt.stage)
    moved = [items[index] for index, _ in ordered]
    for (index, _), item in zip(slots, moved, strict=True):
        items[index] = item


class QualityFailure(AssertionError):
    """A case's image scored outside its band: a test failure shown without a traceback."""


def xfail_marker(
    case: Case, *, default_strict: bool, raises: type[BaseException]
) -> pytest.MarkDecorator:
    assert case.expected_fail is not None
    declared = case.expected_fail
    strict = default_strict if declared.strict is None else declared.strict
    return pytest.mark.xfail(reason=declared.reason, strict=strict, raises=raises)


class CaseRunner(Protocol):
    """What collection and the items need from the run (the session provides it)."""

    @property
    def has_host(self) -> bool: ...

    @property
    def xfail_strict(self) -> bool: ...

    @property
    def settings(self) -> Settings: ...

    def suite_cases(self, path: Path) -> tuple[Suite, list[Case]]: ...

    def setup_case(self, item: ZImageItem) -> None: ...

    def run_case(self, item: ZImageItem) -> None: ...


#: Why zimage items skip when no host is given.
NO_HOST_REASON = (
    "no ComfyUI host given: pass --zimage-host=HOST:PORT (or set $ZIMAGE_HOST), or "
    "--zimage-host=simulated for a dry run"
)


class SuiteFile(pytest.File):
    """A ``zimage*.toml`` suite file; ``runner`` loads it and runs its items."""

    def __init__(self, *, runner: CaseRunner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runner = runner

    def collect(self) -> Iterator[pytest.Item]:
        runner = self.runner
        try:
            suite, cases = runner.suite_cases(self.path)
        except ZImageError as exc:
            raise self.CollectError(str(exc)) from None
        for case in cases:
            item = ZImageItem.from_parent(self, name=case.id, case=case, suite=suite, runner=runner)
            if not runner.has_host:
                item.add_marker(pytest.mark.skip(reason=NO_HOST_REASON))
            if case.expected_fail is not None:
                item.add_marker(
                    xfail_marker(case, default_strict=runner.xfail_strict, raises=QualityFailure)
                )
            yield item


class ZImageItem(pytest.Item):
    """One (prompt, config, seed) of a suite: generate, score, check against the reference."""

    def __init__(self, *, case: Case, suite: Suite, runner: CaseRunner, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.suite = suite
        self.runner = runner
        self.add_marker(pytest.mark.zimage)
        # Every case's JUnit entry says whether the gate sets the exit status (#11: in ADVISORY
        # mode every output says so), as the testsuite's zimage_gate_mode property does.
        self.user_properties.append(("zimage_gate_mode", gate_mode(runner.settings)))

    def setup(self) -> None:
        self.runner.setup_case(self)

    def runtest(self) -> None:
        self.runner.run_case(self)

    def repr_failure(
        self, excinfo: ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ZImageError | QualityFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        role = "reference" if self.case.is_reference else "candidate"
        return self.path, 0, f"[{self.suite.name}] {self.case.id} ({role})"
