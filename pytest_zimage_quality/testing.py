"""A protocol-faithful fake ComfyUI for tests and dry runs, plus its pytest fixtures.

Enable the fixtures with ``-p pytest_zimage_quality.testing`` (or ``pytest_plugins =
["pytest_zimage_quality.testing"]`` in a root ``conftest.py``)::

    def test_client_reads_history(zimage_fake_comfyui):
        client = MyClient(zimage_fake_comfyui.url)
        ...
        assert zimage_fake_comfyui.generations == 1

    def test_slow_server(zimage_fake_comfyui_factory):
        fake = zimage_fake_comfyui_factory(image_latency=0.2, load_latency=1.0)
        fake.faults.http_error("/prompt", 503, times=2)

``FakeComfyUI`` answers the endpoints and WebSocket frames of ComfyUI 0.18.1 as recorded in
``tests/transcripts/``; see its docstring for the options. The implementation lives in the
private package ``pytest_zimage_quality._fake``; aiohttp is imported only when a fake starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ._fake.executor import BusyInterval, RunRecord
from ._fake.fake import FakeComfyUI, FakeComfyUIError
from ._fake.faults import ExecutionFailure, Faults, RunInfo
from ._fake.log import RecordedRequest
from ._fake.models import DEFAULT_MODELS, default_level
from ._fake.nodes import LOADER_INPUTS, models_for_graphs

__all__ = [
    "DEFAULT_MODELS",
    "LOADER_INPUTS",
    "BusyInterval",
    "ExecutionFailure",
    "FakeComfyUI",
    "FakeComfyUIError",
    "Faults",
    "RecordedRequest",
    "RunInfo",
    "RunRecord",
    "default_level",
    "models_for_graphs",
    "zimage_fake_comfyui",
    "zimage_fake_comfyui_factory",
]

FakeComfyUIFactory = Callable[..., FakeComfyUI]


@pytest.fixture
def zimage_fake_comfyui() -> Iterator[FakeComfyUI]:
    """A fresh, started FakeComfyUI with the example suite's model files.

    Stopped after the test; errors the fake raised while serving fail the test there.
    """
    with FakeComfyUI() as fake:
        yield fake


@pytest.fixture
def zimage_fake_comfyui_factory() -> Iterator[FakeComfyUIFactory]:
    """Build started fakes with custom options: ``factory(image_latency=0.1, models={...})``.

    Every fake it made is stopped after the test.
    """
    made: list[FakeComfyUI] = []

    def make(**options: Any) -> FakeComfyUI:
        fake = FakeComfyUI(**options)
        fake.start()
        made.append(fake)
        return fake

    yield make
    errors: list[FakeComfyUIError] = []
    for fake in made:
        try:
            fake.stop()
        except FakeComfyUIError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
