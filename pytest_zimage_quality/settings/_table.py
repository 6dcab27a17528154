"""The table of every option: ``OPTIONS`` joins the row modules in ``--help`` order; the
removed options with what replaces each; the gate parameters a suite file may set too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._option import Option
from ._options_cases import CASE_OPTIONS
from ._options_pool import POOL_OPTIONS
from ._options_scoring import SCORING_OPTIONS

__all__ = ["GATE_PARAMETERS", "OPTIONS", "REMOVED_OPTIONS", "default"]

OPTIONS: Mapping[str, Option] = {
    opt.name: opt for opt in (*CASE_OPTIONS, *SCORING_OPTIONS, *POOL_OPTIONS)
}

#: Options that no longer exist, and what replaces them: a leftover use is one usage error.
REMOVED_OPTIONS: Mapping[str, str] = {
    "inconclusive": (
        "--zimage-inconclusive (ini zimage_inconclusive) was removed: a run can no longer exit "
        "0 while a config's bound did not clear. Use --zimage-advisory (ini zimage_advisory) to "
        "show the gate without letting it set the exit status (docs/gate.md)"
    ),
}

#: The per-suite gate parameters: settable by option and in the suite file's [suite] table.
GATE_PARAMETERS = tuple(
    opt.name for opt in OPTIONS.values() if opt.in_suite and opt.bounds is not None
)


def default(name: str) -> Any:
    """The built-in default of option ``name``."""
    return OPTIONS[name].default
