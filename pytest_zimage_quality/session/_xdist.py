"""What an xdist worker keeps and sends: its records for the stage hold, its environment."""

from __future__ import annotations

from typing import Any

import pytest

from ..records import CaseRecord
from ._records import record_from_report

__all__ = ["keep_record", "ship_environment"]


def keep_record(records: dict[tuple[str, str], CaseRecord], report: pytest.TestReport) -> None:
    """On the worker that runs every zimage case: keep each case's record, so the stage hold
    decides as without -n (the controller writes the artifacts from the reports)."""
    found = record_from_report(report)
    if found is not None:
        records[found[0].key] = found[0]


def ship_environment(config: pytest.Config, environment: dict[str, Any]) -> None:
    """Send the worker's servers and scorers to the controller (xdist's workeroutput)."""
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["zimage_environment"] = environment
