"""The pytest11 entry point, kept thin: options, the session object, collection, fixtures.

Loaded by every pytest run in an environment that has the package installed, so it imports
nothing heavy: torch, open_clip, lpips, httpx, websockets, aiohttp, scipy and jinja2 are
imported only when a zimage test, fixture or summary actually needs them.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .collect import SuiteFile, gate_mode, is_suite_file, order_by_stage
from .errors import ZImageError
from .options import register_options, resolve_settings
from .session import NO_HOST_REASON, SESSION_KEY, ZImageSession
from .settings import Settings
from .xdist_group import WORKERINPUT_KEY, groups_cases, make_scheduler

if TYPE_CHECKING:
    from .comfyui import ComfyUIClient
    from .engine import CaseOutcome
    from .suite import Case


T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    register_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspec  # noqa: PLC0415 - only when pytest asks for hookspecs

    pluginmanager.add_hookspecs(hookspec)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "zimage: a Z-Image quality case (set on every item a suite file yields)"
    )
    session = ZImageSession(config, resolve_settings(config))
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "zimage-session")
    config.pluginmanager.register(StageOrder(), "zimage-stage-order")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session, groups_cases(config)), "zimage-xdist")


class XdistHooks:
    """Registered only when pytest-xdist is installed: hands the run id to the workers and,
    under ``-n``, schedules every zimage case onto one of them (xdist_group.py)."""

    def __init__(self, session: ZImageSession, grouped: bool) -> None:
        self.session = session
        self.grouped = grouped

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["zimage_run_id"] = self.session.run_id
        node.workerinput[WORKERINPUT_KEY] = self.grouped

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if not self.grouped:
            return None
        return make_scheduler(config, log, self.session.case_ids())

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        environment = getattr(node, "workeroutput", {}).get("zimage_environment")
        if isinstance(environment, dict):
            self.session.merge_environment(environment)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if is_suite_file(file_path):
        runner = parent.config.stash[SESSION_KEY]
        return SuiteFile.from_parent(parent, path=file_path, runner=runner)
    return None


class StageOrder:
    """Puts the zimage items stage-major again after every other plugin ordered them (the
    sequential stage hold needs every stage-k case run before stage k+1).

    Last means outermost: pytest's --ff/--nf and pytest-randomly reorder in ``tryfirst``
    wrappers (--ff and --nf after their ``yield``), and wrappers of one rank nest in the reverse
    of their registration. Registered here, after the cache provider's own ``tryfirst``
    configure registered them, this wrapper encloses theirs, and its code after the ``yield``
    runs after all of theirs. Within a stage the order they chose stays.
    """

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> Generator[None]:
        result = yield
        order_by_stage(items)
        return result


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "zimage_case" in metafunc.fixturenames:
        metafunc.config.stash[SESSION_KEY].parametrize(metafunc)


@pytest.hookimpl(trylast=True)
def pytest_zimage_make_clip_scorer(config: pytest.Config, settings: Settings) -> Any:
    from .scorers import CLIPScorer  # noqa: PLC0415 - torch + open_clip only when scoring

    return CLIPScorer.load(
        model=settings.clip_model,
        pretrained=settings.clip_pretrained,
        device=settings.device,
        random_weights=settings.random_weights,
        precision=settings.precision,
    )


@pytest.hookimpl(trylast=True)
def pytest_zimage_make_lpips_scorer(config: pytest.Config, settings: Settings) -> Any:
    from .scorers import LPIPSScorer  # noqa: PLC0415 - torch + lpips only when scoring

    return LPIPSScorer.load(
        net=settings.lpips_net,
        weights=settings.lpips_weights,
        device=settings.device,
        random_weights=settings.random_weights,
        precision=settings.precision,
    )


# -- fixtures --------------------------------------------------------------------------------


def _session(request: pytest.FixtureRequest) -> ZImageSession:
    return request.config.stash[SESSION_KEY]


def _or_fail(make: Callable[[], T]) -> T:
    """``make()``, with a ZImageError turned into a failure showing its message and hint only."""
    try:
        return make()
    except ZImageError as exc:
        error = exc
    pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def zimage_settings(request: pytest.FixtureRequest) -> Settings:
    """The zimage options of this run, after precedence (command line > ini > suite > default)."""
    return _session(request).settings


@pytest.fixture(scope="session")
def zimage_comfy(request: pytest.FixtureRequest) -> ComfyUIClient:
    """The connected ComfyUI client of the run's first host (skips when no host is given)."""
    session = _session(request)
    if not session.has_host:
        pytest.skip(NO_HOST_REASON)
    return _or_fail(lambda: session.engine().clients[0])


@pytest.fixture(scope="session")
def zimage_clip(request: pytest.FixtureRequest) -> Any:
    """The run's CLIPScore scorer, resident on --zimage-device (``score(images, texts)``)."""
    return _or_fail(lambda: _session(request).scorers()[0])


@pytest.fixture(scope="session")
def zimage_lpips(request: pytest.FixtureRequest) -> Any:
    """The run's LPIPS scorer, resident on --zimage-device (``distance(images_a, images_b)``)."""
    return _or_fail(lambda: _session(request).scorers()[1])


@pytest.fixture
def zimage_case(request: pytest.FixtureRequest) -> Case:
    """One case of --zimage-suite; tests that request it are parametrized over the cases."""
    case = getattr(request, "param", None)
    if case is None:
        pytest.fail(
            "zimage_case is only available to tests parametrized by the plugin", pytrace=False
        )
    # its JUnit entry names the gate's mode, as the suite's own per-case tests do
    mode = ("zimage_gate_mode", gate_mode(_session(request).settings))
    if mode not in request.node.user_properties:
        request.node.user_properties.append(mode)
    return case  # type: ignore[no-any-return]


@pytest.fixture
def zimage_result(request: pytest.FixtureRequest, zimage_case: Case) -> CaseOutcome:
    """The generated and scored outcome of ``zimage_case`` (shared with the suite's own test)."""
    session = _session(request)
    if not session.has_host:
        pytest.skip(NO_HOST_REASON)
    suite_path = session.settings.suite_path
    assert suite_path is not None
    return _or_fail(lambda: session.outcome(session.load(suite_path), zimage_case))
