"""The pytest11 entry point (work in progress: options only)."""

from __future__ import annotations

import pytest

from .options import register_options


def pytest_addoption(parser: pytest.Parser) -> None:
    register_options(parser)
