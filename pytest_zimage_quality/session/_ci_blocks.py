"""summary.json's CI blocks, built at the end of a run from what the session gathered: the
peak VRAM per config, the determinism check's noise floor, the provenance of the run, and
the comparison with ``--zimage-baseline`` (docs/ci.md).

The statistics and block shapes live in ``summary/ci.py``, ``noise_floor`` and ``baseline``;
this module only feeds them the run's environment and records.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..baseline import Baseline, BaselineError, Comparison, compare
from ..records import CaseRecord
from ..suite import Suite

if TYPE_CHECKING:
    from ..summary import RunSummary

__all__ = ["compare_baseline", "noise_floor_block", "vram_block_of", "with_ci_blocks"]


def with_ci_blocks(
    summary: RunSummary, environment: Mapping[str, Any], suites: Iterable[Suite]
) -> RunSummary:
    """``summary`` with its ``vram``, ``noise_floor`` and ``provenance`` blocks filled."""
    from ..summary.ci import provenance_block, suite_fingerprint  # noqa: PLC0415

    env = environment
    stats = env.get("system_stats") or {}
    return dataclasses.replace(
        summary,
        vram=vram_block_of(summary, env),
        noise_floor=noise_floor_block(summary, env),
        provenance=provenance_block(
            [(str(s.get("url", "")), stats.get(s.get("url")) or s) for s in env["servers"]],
            models=env.get("model_files") or {},
            suites=[suite_fingerprint(s.name, s.sha256, s.workflow.graph) for s in suites],
            scorers=env.get("scorers") or {},
            plugin_version=__version__,
            runner_python=platform.python_version(),
            regenerated=env.get("regenerated_other_lane") or (),
        ),
    )


def noise_floor_block(summary: RunSummary, environment: Mapping[str, Any]) -> dict[str, Any] | None:
    """The determinism check's floor, each suite's margin beside it, and a warning when a
    margin is not above it."""
    from ..noise_floor import RecheckPair, margin_warning, measure_noise_floor  # noqa: PLC0415

    rows = environment.get("recheck_pairs")
    if not rows:
        return None
    floor = measure_noise_floor(RecheckPair(**row) for row in rows)
    block = floor.to_dict()
    block["margins"] = {suite.name: suite.margin for suite in summary.suites}
    warnings_ = [
        f"{suite.name}: {w}"
        for suite in summary.suites
        if (w := margin_warning(floor, suite.margin)) is not None
    ]
    block["margin_warning"] = "; ".join(warnings_) or None
    return block


def vram_block_of(summary: RunSummary, environment: Mapping[str, Any]) -> dict[str, Any] | None:
    """Per config, its peak VRAM and the change against its suite's reference."""
    from ..summary.ci import vram_block  # noqa: PLC0415
    from ..summary.verdicts import config_name  # noqa: PLC0415
    from ..vram import ConfigVram  # noqa: PLC0415

    peaks = {
        name: ConfigVram(config=name, **values)
        for name, values in (environment.get("vram_peaks") or {}).items()
    }
    multi = len(summary.suites) > 1
    references = {
        config_name(suite.name, config.key, multi_suite=multi): config_name(
            suite.name, suite.reference.key, multi_suite=multi
        )
        for suite in summary.suites
        for config in suite.configs
    }
    return vram_block(peaks, references)


def compare_baseline(
    baseline: Baseline,
    summary: RunSummary,
    records: Iterable[CaseRecord],
    *,
    any_lane: bool,
) -> tuple[dict[str, Any], Comparison | None, str]:
    """summary.json's ``baseline`` block, the comparison, and why the baseline was refused
    ("" when it was not): a baseline from another lane is refused (the run then fails with
    the reason) unless ``--zimage-baseline-any-lane``."""
    rows = [record.to_dict() for record in records]
    try:
        comparison = compare(baseline, summary.to_dict(), rows, any_lane=any_lane)
    except BaselineError as exc:
        return {"path": str(baseline.path), "refused": str(exc)}, None, str(exc)
    return comparison.to_dict(), comparison, ""
