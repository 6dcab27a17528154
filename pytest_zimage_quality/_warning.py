"""The plugin's warning class, apart from the error tree because it subclasses pytest's.

``ZImageWarning`` is a ``pytest.PytestWarning`` so users filter it like any pytest warning
(``-W ignore::pytest_zimage_quality.ZImageWarning``, ``filterwarnings`` in their ini). Defining
it here keeps :mod:`pytest_zimage_quality.errors` free of pytest: the pure core (suite,
workflow, records) imports the error tree, and importing it must not load pytest.
:mod:`~pytest_zimage_quality.errors` and the package hand this class out on first access.
"""

from __future__ import annotations

import pytest

__all__ = ["ZImageWarning"]


class ZImageWarning(pytest.PytestWarning):
    """Warnings from the plugin (cache repairs, truncated prompts, disagreeing tests, xdist)."""

    __module__ = "pytest_zimage_quality"
