"""Hooks users can implement in a ``conftest.py`` to extend the plugin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .metrics import ScorerSpec
    from .settings import Settings
    from .suite import Suite


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


@pytest.hookspec
def pytest_zimage_register_scorers(
    config: pytest.Config, settings: Settings, suites: Sequence[Suite]
) -> Sequence[ScorerSpec] | ScorerSpec | None:
    """Register further metrics of the run (every implementation is called).

    Return a :class:`~pytest_zimage_quality.ScorerSpec`, a list of them, or None. Each runs
    in the scoring worker beside CLIPScore and LPIPS, and its values reach the records,
    summary.json, the terminal and HTML reports and JUnit (docs/scorers.md). ``suites`` are
    the suites of the run (e.g. to skip a scorer no prompt needs). Called once, on the main
    thread, while the server generates the first images. Installed packages can register
    theirs through the entry-point group ``pytest_zimage_quality.scorers`` instead.
    """
