"""Fixtures shared by the test modules (the helpers they import live in tests/helpers/)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

# The network stack and the fake server, imported here, in the outer process: pytester's
# in-process runs drop every module first imported during a run, and httpx/httpcore do not
# survive being re-imported under live references (their exception mapping breaks).
import aiohttp.web  # noqa: F401  (isort: skip; the fake server's, imported at its first start)
import httpcore  # noqa: F401  (httpx imports it lazily, at its first client)
import httpx
import websockets.sync.client

import pytest_zimage_quality._fake.server
import pytest_zimage_quality.comfyui._client  # noqa: F401
from tests.helpers import write_small_suite


def _warm_network_stack() -> None:
    """Fail one connection through httpx and one through websockets, here, in the outer process.

    httpx builds its httpcore-to-httpx exception map at the first error it maps, and both
    libraries import their backends at the first connection. Done inside an in-process
    pytester run instead, those modules would be dropped after it and imported afresh later,
    and the map, keyed by the old classes, would let httpcore's new ``ConnectError`` escape
    unmapped: an order-dependent failure that only a random test order shows.
    """
    with socket.socket() as probe:  # a port with nothing listening: refused at once
        probe.bind(("127.0.0.1", 0))
        url = f"127.0.0.1:{probe.getsockname()[1]}"
    with contextlib.suppress(httpx.ConnectError):
        httpx.get(f"http://{url}/", timeout=5)
    with contextlib.suppress(OSError):
        websockets.sync.client.connect(f"ws://{url}/", open_timeout=5)
    httpx.Client(verify=True).close()  # the TLS context, certifi's bundle


_warm_network_stack()


@pytest.fixture(autouse=True)
def _no_github_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs would append their Markdown summaries to the real job summary of a GitHub
    Actions run of this test suite; tests that want one set their own file."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def small_suite(pytester: pytest.Pytester) -> Path:
    return write_small_suite(pytester.path)
