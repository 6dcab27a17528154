"""Hooks users can implement in a ``conftest.py`` to extend the plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .settings import Settings


@pytest.hookspec(firstresult=True)
def pytest_zimage_make_clip_scorer(config: pytest.Config, settings: Settings) -> Any:
    """Build the CLIPScore scorer of the run (the ``zimage_clip`` fixture and suite cases).

    Return an object with ``score(images, texts, labels=None) -> list[float]`` (see
    docs/scorers.md), or None to let the next implementation (finally the plugin's
    open_clip scorer) decide.
    """


@pytest.hookspec(firstresult=True)
def pytest_zimage_make_lpips_scorer(config: pytest.Config, settings: Settings) -> Any:
    """Build the LPIPS scorer of the run (``distance(images_a, images_b, labels=None)``)."""
