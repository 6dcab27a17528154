"""The run summary's types: what one run measured and decided, as frozen plain values.

``build.build_summary`` makes them from records; ``RunSummary.to_dict()`` is summary.json
(schema: ``docs/summary.schema.json``); the terminal and HTML renderers read the objects, so
the three cannot disagree. Nothing here imports pytest, the session or a renderer, nor scipy
(statistics are only referred to by type), so the pytest layer can import it at load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ..metrics import MetricInfo
from .environment import Environment, ServerSummary
from .pool import PoolSummary

if TYPE_CHECKING:
    from ..planning import SuitePlan
    from ..stages import StageResult
    from ..stats import Description, GateResult
    from .metric_gate import MetricGate
    from .metrics import DistanceAxis, MetricColumn

__all__ = [
    "ADVISORY_BANNER",
    "IDENTICAL_IMAGES_BANNER",
    "PLUGIN_NAME",
    "RANDOM_BANNER",
    "RESULTS_FILE",
    "SCHEMA_VERSION",
    "SIMULATED_BANNER",
    "ConfigSummary",
    "Environment",
    "ExitDecision",
    "Parameter",
    "PoolSummary",
    "PromptCell",
    "PromptSummary",
    "Reference",
    "RunSummary",
    "ServerSummary",
    "Speed",
    "SuiteSummary",
    "with_identical_images",
]

#: 2: a config's ``decision`` (issue 11's verdicts, INCOMPLETE included), its stages and missing
#: prompts, each suite's plan and notes, and the exit's advisory mode and early stop.
SCHEMA_VERSION = 2
PLUGIN_NAME = "pytest-zimage-quality"
RESULTS_FILE = "results.jsonl"
SIMULATED_BANNER = "SIMULATED — a fake ComfyUI rendered these images; NOT A MEASUREMENT"
RANDOM_BANNER = "RANDOM WEIGHTS — NOT A QUALITY MEASUREMENT"
ADVISORY_BANNER = (
    "ADVISORY — the gate is shown but does not set the exit status (--zimage-advisory)"
)

#: A config's decision: the gate's (``stats.DECISIONS``), or REFERENCE for the reference config.
REFERENCE = "reference"
#: The schema-1 ``verdict`` of a candidate config without a gate result.
NO_DATA = "no data"


def _description(value: Description | None) -> dict[str, Any] | None:
    return None if value is None else value.to_dict()


@dataclass(frozen=True)
class Speed:
    """Median generation seconds of one config's images, and its speedup over the reference."""

    median_seconds: float | None
    n: int
    source: Literal["server", "wall"] | None
    speedup: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "median_seconds": self.median_seconds,
            "n": self.n,
            "source": self.source,
            "speedup": self.speedup,
        }


@dataclass(frozen=True)
class ConfigSummary:
    """One config of a suite: its scores, speed and (for a candidate) its gate result."""

    key: str
    label: str
    role: Literal["reference", "candidate"]
    n_cases: int
    n_scored: int
    n_prompts: int
    n_seeds: int
    clipscore: Description | None
    lpips: Description | None
    speed: Speed
    gate: GateResult | None
    decision: str  # a stats decision (INCOMPLETE included) or REFERENCE
    verdict: str  # the same in schema-1 words: a stats verdict, REFERENCE or NO_DATA
    two_axis: str | None
    expected_fail_prompts: tuple[str, ...]
    flagged_prompts: tuple[str, ...]
    outcomes: Mapping[str, int]
    #: every metric of the run over this config's images, by name (docs/scorers.md)
    metrics: Mapping[str, MetricColumn] = field(default_factory=dict)
    #: prompts the gate planned for this config that have no usable pair (failed or NaN)
    missing_prompts: tuple[str, ...] = ()
    #: prompts the gate planned for this config (for "used n of N")
    planned_prompts: int = 0
    stages: StageResult | None = None
    notes: tuple[str, ...] = ()  # the summary's own notes (the gate's are in ``gate.notes``)
    #: each gated metric's decision when the suite gates on more than one (metric_gates.py)
    metric_gates: Mapping[str, MetricGate] = field(default_factory=dict)

    @property
    def is_reference(self) -> bool:
        return self.role == "reference"

    @property
    def prompts_used(self) -> int:
        return self.gate.n_prompts if self.gate is not None else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "role": self.role,
            "n_cases": self.n_cases,
            "n_scored": self.n_scored,
            "n_prompts": self.n_prompts,
            "n_seeds": self.n_seeds,
            "clipscore": _description(self.clipscore),
            "lpips": _description(self.lpips),
            "speed": self.speed.to_dict(),
            "gate": None if self.gate is None else self.gate.to_dict(),
            "decision": self.decision,
            "verdict": self.verdict,
            "two_axis": self.two_axis,
            "expected_fail_prompts": list(self.expected_fail_prompts),
            "flagged_prompts": list(self.flagged_prompts),
            "outcomes": dict(self.outcomes),
            "metrics": {name: column.to_dict() for name, column in self.metrics.items()},
            "missing_prompts": list(self.missing_prompts),
            "planned_prompts": self.planned_prompts,
            "stages": None if self.stages is None else self.stages.to_dict(),
            "notes": list(self.notes),
            "metric_gates": {name: g.to_dict() for name, g in self.metric_gates.items()},
        }


@dataclass(frozen=True)
class PromptCell:
    """A (prompt, config) cell: mean CLIPScore over its seeds; for a candidate, the comparison."""

    n: int
    clipscore_mean: float
    expected_fail: bool
    is_reference: bool
    delta: float | None = None
    lpips_mean: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    flagged: bool | None = None
    #: mean of each metric over the cell's seeds
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "n": self.n,
            "clipscore_mean": self.clipscore_mean,
            "expected_fail": self.expected_fail,
            "metrics": dict(self.metrics),
        }
        if not self.is_reference:
            data.update(
                delta=self.delta,
                lpips_mean=self.lpips_mean,
                p_value=self.p_value,
                p_adjusted=self.p_adjusted,
                flagged=self.flagged,
            )
        return data


@dataclass(frozen=True)
class PromptSummary:
    key: str
    text: str
    tags: tuple[str, ...]
    cells: Mapping[str, PromptCell]  # by config key, in the suite's config order

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "text": self.text,
            "tags": list(self.tags),
            "cells": {key: cell.to_dict() for key, cell in self.cells.items()},
        }


@dataclass(frozen=True)
class Parameter:
    """A gate parameter in force and where it came from ("option", "suite file", "default")."""

    value: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source}


@dataclass(frozen=True)
class Reference:
    key: str
    label: str

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label}


@dataclass(frozen=True)
class SuiteSummary:
    """One suite's gate: its parameters, a row per config and a row per prompt."""

    name: str
    path: str | None
    sha256: str | None
    reference: Reference
    parameters: Mapping[str, Parameter]  # tolerance, margin, alpha, clip_floor
    lpips_close: float
    per_prompt_correction: str
    counts: Mapping[str, int]
    configs: tuple[ConfigSummary, ...]
    prompts: tuple[PromptSummary, ...]
    #: the metric the per-config gate ran on (the suite's ``gate_metric``)
    gate_metric: str = "clipscore"
    plan: SuitePlan | None = None
    notes: tuple[str, ...] = ()  # suite-level notes (a rerun that adds looks, ...)
    generations_saved: int = 0  # by the sequential stages, candidates and reference
    #: the reference-based metric read on the two axes ([suite] distance_metric, LPIPS)
    distance: DistanceAxis | None = None

    @property
    def margin(self) -> float:
        return self.parameters["margin"].value

    @property
    def alpha(self) -> float:
        return self.parameters["alpha"].value

    @property
    def tolerance(self) -> float:
        return self.parameters["tolerance"].value

    def planned_power(self, config: ConfigSummary) -> float | None:
        """The power planned for ``config``: a staged suite's is its sequential design's (the
        chance to end NON-INFERIOR through every look), not one look's at the prompts used."""
        if config.gate is None:
            return None
        if self.plan is not None and self.plan.staged and self.plan.sequential_power is not None:
            return self.plan.sequential_power
        return config.gate.power

    def planned_mdd(self, config: ConfigSummary) -> float | None:
        """The minimum detectable drop planned for ``config``: likewise the sequential design's
        for a staged suite."""
        if config.gate is None:
            return None
        if self.plan is not None and self.plan.staged and self.plan.sequential_power is not None:
            return self.plan.sequential_mdd
        return config.gate.min_detectable_drop

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": self.path,
            "sha256": self.sha256,
            "reference": self.reference.to_dict(),
            "parameters": {name: p.to_dict() for name, p in self.parameters.items()},
            "lpips_close": self.lpips_close,
            "per_prompt_correction": self.per_prompt_correction,
            "counts": dict(self.counts),
            "configs": [config.to_dict() for config in self.configs],
            "prompts": [prompt.to_dict() for prompt in self.prompts],
            "gate_metric": self.gate_metric,
            "plan": None if self.plan is None else self.plan.to_dict(),
            "notes": list(self.notes),
            "generations_saved": self.generations_saved,
            "distance": None if self.distance is None else self.distance.to_dict(),
        }


@dataclass(frozen=True)
class ExitDecision:
    """Whether the gate lets the run pass, and why not (the run's exit status follows it).

    Only NON-INFERIOR passes (``stats.gate_exit``). ``gate_applied`` is False where the gate is
    shown but does not set the exit status: in ADVISORY mode and with random weights.
    """

    gate_ran: bool  # some candidate config was gated (none: nothing to judge)
    gate_applied: bool  # the gate decides the exit status (not ADVISORY, not random weights)
    gate_passed: bool  # every candidate NON-INFERIOR, and the run was not stopped early
    failed_configs: tuple[str, ...]  # INFERIOR
    inconclusive_configs: tuple[str, ...]  # INCONCLUSIVE or INSUFFICIENT DATA
    flagged: tuple[str, ...]
    reason: str
    advisory: bool = False
    incomplete_configs: tuple[str, ...] = ()  # INCOMPLETE
    stopped_early: str = ""  # why the run stopped before its last case ("" if it did not)
    decisions: Mapping[str, str] = field(default_factory=dict)  # config name -> decision

    @property
    def fails_run(self) -> bool:
        return self.gate_applied and not self.gate_passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate_ran": self.gate_ran,
            "gate_applied": self.gate_applied,
            "gate_passed": self.gate_passed,
            "advisory": self.advisory,
            "stopped_early": self.stopped_early,
            "decisions": dict(self.decisions),
            "failed_configs": list(self.failed_configs),
            "inconclusive_configs": list(self.inconclusive_configs),
            "incomplete_configs": list(self.incomplete_configs),
            "flagged": list(self.flagged),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RunSummary:
    """The whole run: the exit decision, the environment and one ``SuiteSummary`` per suite."""

    run_id: str
    created: str
    simulated: bool
    random_weights: bool
    banners: tuple[str, ...]
    exit: ExitDecision
    options: Mapping[str, Any]  # the options in force, JSON-ready (header values left out)
    environment: Environment
    n_cases: int
    suites: tuple[SuiteSummary, ...]
    schema_version: int = SCHEMA_VERSION
    #: the comparison with ``--zimage-baseline`` (``baseline.Comparison.to_dict()``, or
    #: ``{"path", "refused"}`` when the baseline was refused); None without a baseline
    baseline: Mapping[str, Any] | None = None
    #: every metric of the run: name, label, kind, direction, device, weights (docs/scorers.md)
    metrics: tuple[MetricInfo, ...] = ()
    #: each case's and config's passed / failed / error (``outcomes.RunVerdicts.to_dict()``)
    verdicts: Mapping[str, Any] | None = None
    #: the lane and every identity the results depend on (``provenance.build_provenance``)
    provenance: Mapping[str, Any] | None = None
    #: per config, the server's peak VRAM while it generated (``vram.vram_summary``)
    vram: Mapping[str, Any] | None = None
    #: the determinism check's measured re-run noise (``noise_floor.NoiseFloor.to_dict()``)
    noise_floor: Mapping[str, Any] | None = None
    #: the servers' hardware classes, the cross-server determinism check, each server's work
    pool: PoolSummary | None = None
    #: why no image of this run can be trusted: every image byte-identical across prompts and
    #: seeds (``identical_images.identical_images_problem``); None when they differ
    identical_images: str | None = None

    @property
    def advisory(self) -> bool:
        return self.exit.advisory

    def to_dict(self) -> dict[str, Any]:
        """summary.json's content."""
        return {
            "schema_version": self.schema_version,
            "plugin": PLUGIN_NAME,
            "run_id": self.run_id,
            "created": self.created,
            "simulated": self.simulated,
            "random_weights": self.random_weights,
            "banners": list(self.banners),
            "exit": self.exit.to_dict(),
            "options": dict(self.options),
            "environment": self.environment.to_dict(),
            "results_file": RESULTS_FILE,
            "n_cases": self.n_cases,
            "suites": [suite.to_dict() for suite in self.suites],
            "baseline": None if self.baseline is None else dict(self.baseline),
            "metrics": [info.to_dict() for info in self.metrics],
            "verdicts": None if self.verdicts is None else dict(self.verdicts),
            "provenance": None if self.provenance is None else dict(self.provenance),
            "vram": None if self.vram is None else dict(self.vram),
            "noise_floor": None if self.noise_floor is None else dict(self.noise_floor),
            "hardware_classes": [] if self.pool is None else list(self.pool.hardware_classes),
            "determinism": None if self.pool is None else self.pool.determinism,
            "pool": None if self.pool is None else self.pool.pool_dict(),
            "identical_images": self.identical_images,
        }


#: The banner of a run whose images are all byte-identical (``RunSummary.identical_images``).
IDENTICAL_IMAGES_BANNER = "IDENTICAL IMAGES — {problem}"


def with_identical_images(summary: RunSummary, problem: str | None) -> RunSummary:
    """``summary`` marking its images untrustworthy: the ``identical_images`` field (summary.json)
    and a banner, which the terminal, report.html and the Markdown show at their top."""
    if problem is None:
        return summary
    banner = IDENTICAL_IMAGES_BANNER.format(problem=problem)
    return replace(summary, identical_images=problem, banners=(*summary.banners, banner))
