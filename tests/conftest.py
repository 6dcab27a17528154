"""Fixtures shared by the test modules (the helpers they import live in tests/helpers/)."""

from __future__ import annotations

from pathlib import Path

import pytest

# The network stack, imported here, in the outer process: pytester's in-process runs drop
# every module first imported during a run, and httpx/httpcore do not survive being
# re-imported under live references (their exception mapping breaks).
import aiohttp  # noqa: F401  (isort: skip)
import httpx  # noqa: F401
import websockets.sync.client  # noqa: F401

import pytest_zimage_quality.comfyui._client  # noqa: F401
from tests.helpers import write_small_suite


@pytest.fixture(autouse=True)
def _no_github_step_summary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs would append their Markdown summaries to the real job summary of a GitHub
    Actions run of this test suite; tests that want one set their own file."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def small_suite(pytester: pytest.Pytester) -> Path:
    return write_small_suite(pytester.path)


@pytest.fixture(scope="session")
def warm_imports() -> None:
    """Import (and exercise) the heavy stack once in the outer process.

    pytester's in-process runs drop every module first imported during a run; scipy's and
    torch's lazily imported internals do not survive that and fail on the next run. Importing
    them here keeps them in pytester's snapshot.
    """
    import torch

    from pytest_zimage_quality import stats
    from pytest_zimage_quality.images import decode_png, encode_png

    stats.noninferiority_gate(
        {"a": [0.3, 0.31], "b": [0.2, 0.22], "c": [0.1, 0.1]},
        {"a": [0.31, 0.3], "b": [0.21, 0.2], "c": [0.1, 0.12]},
        margin=0.01,
    )
    stats.per_prompt_comparisons({"a": [0.3, 0.31]}, {"a": [0.31, 0.3]})
    decode_png(encode_png(torch.zeros(3, 4, 4, dtype=torch.uint8)))
    import jinja2  # noqa: F401
