"""The error tree is pure: the core imports it without pytest; the warning is still pytest's."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

import pytest_zimage_quality
from pytest_zimage_quality import errors


def _modules_after(statement: str) -> set[str]:
    probe = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return set(result.stdout.split())


@pytest.mark.parametrize(
    "module",
    ["pytest_zimage_quality.suite", "pytest_zimage_quality.errors", "pytest_zimage_quality"],
)
def test_importing_the_pure_core_does_not_import_pytest(module: str) -> None:
    loaded = _modules_after(f"import {module}")
    assert module in loaded
    assert "pytest" not in loaded
    assert "_pytest" not in loaded


def test_the_warning_loads_pytest_on_first_use() -> None:
    loaded = _modules_after(
        "from pytest_zimage_quality.errors import ZImageWarning\n"
        "import pytest\n"
        "assert issubclass(ZImageWarning, pytest.PytestWarning)"
    )
    assert "pytest_zimage_quality._warning" in loaded


def test_the_warning_is_one_pytest_warning_class_under_both_names() -> None:
    assert pytest_zimage_quality.ZImageWarning is errors.ZImageWarning
    assert issubclass(errors.ZImageWarning, pytest.PytestWarning)
    assert errors.ZImageWarning.__module__ == "pytest_zimage_quality"
    with pytest.warns(pytest_zimage_quality.ZImageWarning, match="cache entry"):
        warnings.warn(errors.ZImageWarning("cache entry repaired"), stacklevel=1)


def test_unknown_names_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        errors.Nope  # noqa: B018
