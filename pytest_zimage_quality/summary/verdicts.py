"""summary.json's ``verdicts`` block: each case's and config's passed / failed / error.

Built from the records and the built summary (the gate's word per config) plus the kind of
each errored case (``outcomes.error_kind``, carried in the test report), so the xdist
controller builds it from reports alone. The rules are :mod:`..outcomes`'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..outcomes import RunVerdicts, run_verdicts
from ..records import CaseRecord
from .model import RunSummary

__all__ = ["case_name", "config_name", "summarize_verdicts"]


def case_name(suite: str, case_id: str, *, multi_suite: bool) -> str:
    """A case's name in the block: its id, prefixed by its suite when the run has several."""
    return f"{suite}/{case_id}" if multi_suite else case_id


def config_name(suite: str, config: str, *, multi_suite: bool) -> str:
    return f"{suite}/{config}" if multi_suite else config


def summarize_verdicts(
    records: Iterable[CaseRecord],
    summary: RunSummary,
    *,
    error_kinds: Mapping[tuple[str, str], str],
) -> RunVerdicts:
    """The verdicts of a run; ``error_kinds``: record key -> ``infrastructure`` / ``setup``."""
    rows = list(records)
    multi = len({r.suite for r in rows} | {s.name for s in summary.suites}) > 1
    cases = [
        (
            case_name(r.suite, r.case_id, multi_suite=multi),
            config_name(r.suite, r.config, multi_suite=multi),
            r.check,
            r.outcome,
        )
        for r in rows
    ]
    configs = [
        (
            config_name(suite.name, config.key, multi_suite=multi),
            config.is_reference,
            str(getattr(config, "decision", None) or config.verdict),
        )
        for suite in summary.suites
        for config in suite.configs
    ]
    kinds = {
        case_name(suite, case_id, multi_suite=multi): kind
        for (suite, case_id), kind in error_kinds.items()
    }
    messages = {
        case_name(r.suite, r.case_id, multi_suite=multi): r.message
        for r in rows
        if r.check == "error" and r.message
    }
    return run_verdicts(cases, configs, error_kinds=kinds, errors=messages)
