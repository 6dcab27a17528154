"""Aggregate per-case records into the run summary: the per-config gate, the tables, the verdict.

The summary is one JSON-ready dict (schema: docs/artifacts.md, ``summary.schema.json``). It is
written to summary.json and is the only input of the terminal tables and the HTML report, so
the three can never disagree. Statistics come from :mod:`pytest_zimage_quality.stats`.
"""

from __future__ import annotations

import math
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import stats
from .records import CaseRecord

if TYPE_CHECKING:
    from .session import ZImageSession
    from .settings import GateParameters, Settings
    from .suite import Suite

__all__ = ["SCHEMA_VERSION", "build_summary", "config_gate", "exit_decision"]

SCHEMA_VERSION = 1

SIMULATED_BANNER = "SIMULATED — a fake ComfyUI rendered these images; NOT A MEASUREMENT"
RANDOM_BANNER = "RANDOM WEIGHTS — NOT A QUALITY MEASUREMENT"
PER_PROMPT_CORRECTION = "Holm–Bonferroni across the prompts of each config (family-wise error ≤ α)"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _describe(values: Sequence[float]) -> dict[str, Any] | None:
    if not values:
        return None
    desc = stats.describe(values)
    return {"n": desc.n, "mean": _finite(desc.mean), "std": _finite(desc.std)}


def _scored(records: Iterable[CaseRecord]) -> list[CaseRecord]:
    return [r for r in records if r.clipscore is not None]


def _speed(records: Sequence[CaseRecord]) -> dict[str, Any]:
    """Median generation seconds of this config's images that the server actually ran.

    Server-cache replays take ~0 s and say nothing about speed, so they are left out; images
    from the plugin's own cache keep the timing recorded when they were generated. The median
    keeps the one image that paid for loading the config's models from dominating.
    """
    server = [
        r.server_seconds for r in records if r.cached != "server" and r.server_seconds is not None
    ]
    if server:
        return {"median_seconds": statistics.median(server), "n": len(server), "source": "server"}
    wall = [r.wall_seconds for r in records if r.cached != "server" and r.wall_seconds is not None]
    if wall:
        return {"median_seconds": statistics.median(wall), "n": len(wall), "source": "wall"}
    return {"median_seconds": None, "n": 0, "source": None}


def _paired(
    candidates: Sequence[CaseRecord], excluded: set[str]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    ref: dict[str, list[float]] = defaultdict(list)
    cand: dict[str, list[float]] = defaultdict(list)
    for record in sorted(candidates, key=lambda r: r.seed):
        if record.prompt in excluded:
            continue
        if record.clipscore is None or record.reference_clipscore is None:
            continue
        ref[record.prompt].append(record.reference_clipscore)
        cand[record.prompt].append(record.clipscore)
    return dict(ref), dict(cand)


def config_gate(
    candidates: Sequence[CaseRecord], gate: GateParameters, *, prompt_order: Sequence[str]
) -> tuple[Any, tuple[Any, ...], list[str]]:
    """The gate result, per-prompt comparisons and expected-fail prompts of one candidate config."""
    excluded = sorted({r.prompt for r in candidates if r.expected_fail})
    ref, cand = _paired(candidates, set(excluded))
    order = {key: i for i, key in enumerate(prompt_order)}
    ref = dict(sorted(ref.items(), key=lambda kv: order.get(kv[0], len(order))))
    cand = {key: cand[key] for key in ref}
    if not ref:
        return None, (), excluded
    result = stats.noninferiority_gate(ref, cand, margin=gate.margin, alpha=gate.alpha)
    comparisons = stats.per_prompt_comparisons(ref, cand, alpha=gate.alpha, margin=gate.margin)
    return result, comparisons, excluded


def _suite_summary(
    suite: Suite | None,
    name: str,
    records: Sequence[CaseRecord],
    settings: Settings,
    gate: GateParameters,
) -> dict[str, Any]:
    by_config: dict[str, list[CaseRecord]] = defaultdict(list)
    for record in records:
        by_config[record.config].append(record)
    reference = records[0].reference
    config_order = (
        [suite.reference, *[c.key for c in suite.candidate_configs]] if suite else sorted(by_config)
    )
    config_order = [key for key in config_order if key in by_config] + sorted(
        set(by_config) - set(config_order)
    )
    prompt_order = [p.key for p in suite.prompts] if suite else sorted({r.prompt for r in records})
    labels = {r.config: r.config_label for r in records}
    ref_speed = _speed(by_config.get(reference, []))

    configs = []
    comparisons_by_config: dict[str, dict[str, Any]] = {}
    for key in config_order:
        rows = by_config[key]
        scored = _scored(rows)
        is_ref = key == reference
        speed: dict[str, Any] = _speed(rows)
        if not is_ref and speed["median_seconds"] and ref_speed["median_seconds"]:
            speed["speedup"] = ref_speed["median_seconds"] / speed["median_seconds"]
        else:
            speed["speedup"] = 1.0 if is_ref and speed["median_seconds"] else None
        entry: dict[str, Any] = {
            "key": key,
            "label": labels.get(key, key),
            "role": "reference" if is_ref else "candidate",
            "n_cases": len(rows),
            "n_scored": len(scored),
            "n_prompts": len({r.prompt for r in scored}),
            "n_seeds": len({r.seed for r in scored}),
            "clipscore": _describe([r.clipscore for r in scored if r.clipscore is not None]),
            "lpips": None
            if is_ref
            else _describe([r.lpips for r in scored if r.lpips is not None]),
            "speed": speed,
            "gate": None,
            "verdict": "reference" if is_ref else "no data",
            "two_axis": None,
            "expected_fail_prompts": [],
            "flagged_prompts": [],
            "outcomes": _count_outcomes(rows),
        }
        if not is_ref:
            result, comparisons, excluded = config_gate(rows, gate, prompt_order=prompt_order)
            entry["expected_fail_prompts"] = excluded
            if result is not None:
                entry["gate"] = result.to_dict()
                entry["verdict"] = result.verdict
                lpips_mean = entry["lpips"]["mean"] if entry["lpips"] else None
                entry["two_axis"] = (
                    stats.two_axis_verdict(
                        lpips_mean, result.verdict, close_threshold=settings.lpips_close
                    )
                    if lpips_mean is not None
                    else None
                )
                entry["flagged_prompts"] = [c.prompt for c in comparisons if c.flagged]
            comparisons_by_config[key] = {c.prompt: c.to_dict() for c in comparisons}
        configs.append(entry)

    prompts = []
    for prompt in prompt_order:
        prompt_rows = [r for r in records if r.prompt == prompt]
        if not prompt_rows:
            continue
        cells = {}
        for key in config_order:
            cell_rows = _scored(r for r in prompt_rows if r.config == key)
            if not cell_rows:
                continue
            cell: dict[str, Any] = {
                "n": len(cell_rows),
                "clipscore_mean": statistics.fmean(
                    r.clipscore for r in cell_rows if r.clipscore is not None
                ),
                "expected_fail": any(r.expected_fail for r in cell_rows),
            }
            if key != reference:
                deltas = [r.delta for r in cell_rows if r.delta is not None]
                lp = [r.lpips for r in cell_rows if r.lpips is not None]
                cell["delta"] = statistics.fmean(deltas) if deltas else None
                cell["lpips_mean"] = statistics.fmean(lp) if lp else None
                comparison = comparisons_by_config.get(key, {}).get(prompt)
                if comparison:
                    cell.update(
                        p_value=comparison.get("p_value"),
                        p_adjusted=comparison.get("p_adjusted"),
                        flagged=comparison.get("flagged"),
                    )
            cells[key] = cell
        first = prompt_rows[0]
        prompts.append(
            {"key": prompt, "text": first.prompt_text, "tags": _tags(suite, prompt), "cells": cells}
        )

    return {
        "name": name,
        "path": str(suite.path) if suite else None,
        "sha256": suite.sha256 if suite else None,
        "reference": {"key": reference, "label": labels.get(reference, reference)},
        "parameters": {
            p: {"value": getattr(gate, p), "source": gate.source(p)}
            for p in ("tolerance", "margin", "alpha", "clip_floor")
        },
        "lpips_close": settings.lpips_close,
        "per_prompt_correction": PER_PROMPT_CORRECTION,
        "counts": _count_outcomes(records),
        "configs": configs,
        "prompts": prompts,
    }


def _tags(suite: Suite | None, prompt: str) -> list[str]:
    if suite is None:
        return []
    try:
        return list(suite.prompt(prompt).tags)
    except KeyError:
        return []


def _count_outcomes(records: Iterable[CaseRecord]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for record in records:
        counts[record.outcome or "unknown"] += 1
    return dict(sorted(counts.items()))


def exit_decision(suites: Sequence[Mapping[str, Any]], settings: Settings) -> dict[str, Any]:
    """Whether the gate lets the run pass, and why not (the run's exit status follows it)."""
    failed, inconclusive, flagged = [], [], []
    for suite in suites:
        for config in suite["configs"]:
            name = f"{suite['name']}/{config['label']}" if len(suites) > 1 else config["label"]
            if config["verdict"] == "fail":
                failed.append(name)
            elif config["verdict"] in ("inconclusive", "insufficient data"):
                inconclusive.append(name)
            if settings.per_prompt_gate and config["flagged_prompts"]:
                flagged.append(f"{name}: {', '.join(config['flagged_prompts'])}")
    reasons = []
    if failed:
        reasons.append(f"non-inferiority not shown for {', '.join(failed)}")
    if inconclusive and settings.inconclusive == "fail":
        reasons.append(
            f"inconclusive (too little power to detect the margin) for {', '.join(inconclusive)}; "
            "add prompts or seeds, or pass --zimage-inconclusive=pass"
        )
    if flagged:
        reasons.append(f"per-prompt drops flagged ({'; '.join(flagged)})")
    ran = any(config["gate"] is not None for suite in suites for config in suite["configs"])
    return {
        # Whether any candidate config got a gate result at all (none: nothing to judge).
        "gate_ran": ran,
        # Random weights are no quality measurement: the gate is shown, not enforced.
        "gate_applied": ran and not settings.random_weights,
        "gate_passed": not reasons,
        "failed_configs": failed,
        "inconclusive_configs": inconclusive,
        "flagged": flagged,
        "reason": "; ".join(reasons),
    }


def environment(session: ZImageSession) -> dict[str, Any]:
    import pytest  # noqa: PLC0415

    from . import __version__  # noqa: PLC0415 - avoids an import cycle at load

    torch = sys.modules.get("torch")
    return {
        "plugin_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pytest": pytest.__version__,
        "torch": getattr(torch, "__version__", None),
        "servers": session.environment.get("servers", []),
        "scorers": session.environment.get("scorers", {}),
        "device": session.settings.device,
    }


def build_summary(session: ZImageSession, records: Sequence[CaseRecord]) -> dict[str, Any]:
    settings = session.settings
    by_suite: dict[str, list[CaseRecord]] = defaultdict(list)
    for record in records:
        by_suite[record.suite].append(record)
    suites_by_name = {s.name: s for s in session.loaded_suites()}
    suites = []
    for name, rows in by_suite.items():
        suite = suites_by_name.get(name)
        gate = settings.gate_for(suite) if suite else settings.gate_for_defaults()
        suites.append(_suite_summary(suite, name, rows, settings, gate))
    banners = []
    if settings.simulated or any(r.simulated for r in records):
        banners.append(SIMULATED_BANNER)
    if settings.random_weights or any(r.random_weights for r in records):
        banners.append(RANDOM_BANNER)
    return {
        "schema_version": SCHEMA_VERSION,
        "plugin": "pytest-zimage-quality",
        "run_id": session.run_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "simulated": settings.simulated,
        "random_weights": settings.random_weights,
        "banners": banners,
        "exit": exit_decision(suites, settings),
        "options": session.describe_options(),
        "environment": environment(session),
        "results_file": "results.jsonl",
        "n_cases": len(records),
        "suites": suites,
    }
