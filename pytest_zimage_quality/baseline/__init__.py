"""Comparison with a baseline run: what changed since the last accepted run, and which failures
are new.

A baseline is a previous run's summary.json (for example the artifact of main's last green
run), or the report directory holding it. For every candidate config and every prompt the
comparison gives the change of the mean paired CLIPScore difference since then and the verdict
then → now; every failing config and case is labelled, as Comfy-Org's GPU regression CI does:

- ``new``: it passed in the baseline, so this change broke it;
- ``inherited``: it failed in the baseline too;
- ``no baseline``: the baseline did not judge it (absent, errored, or not scored).

Images from another lane (:mod:`provenance`) are not comparable, so a baseline from another
lane is refused unless the user overrides that. A history directory (one summary.json per
stored run) gives each config's Δ and verdict across runs, for the report's chart.

Pure: reads JSON files and works on the summary.json shape (plain mappings), which is stable
across the plugin's versions; per-case outcomes come from the summary's ``cases`` when it has
them, else from the results.jsonl beside it.
"""

from __future__ import annotations

from ._compare import CaseChange, Comparison, ConfigChange, PromptChange, compare
from ._history import HistoryPoint, load_history
from ._read import Baseline, BaselineError, config_passes, load_baseline

__all__ = [
    "Baseline",
    "BaselineError",
    "CaseChange",
    "Comparison",
    "ConfigChange",
    "HistoryPoint",
    "PromptChange",
    "compare",
    "config_passes",
    "load_baseline",
    "load_history",
]
