"""Comparing this run with a baseline: each candidate config's and prompt's change of Δ and
verdict then → now, and each failing config and case labelled ``new``, ``inherited`` or
``no baseline``; a baseline from another lane is refused unless overridden."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..provenance import lanes_from_summary, run_lanes_compatible
from ._read import (
    Baseline,
    BaselineError,
    Label,
    _case_outcomes,
    _configs,
    _difference,
    _judged_failing,
    _prompt_deltas,
    config_passes,
)

__all__ = ["CaseChange", "Comparison", "ConfigChange", "PromptChange", "compare"]


@dataclass(frozen=True)
class ConfigChange:
    """One candidate config: Δ (mean paired CLIPScore difference) and verdict, then → now."""

    suite: str
    config: str
    label: str
    verdict_then: str | None  # None: not in the baseline
    verdict_now: str
    mean_diff_then: float | None
    mean_diff_now: float | None
    lower_bound_then: float | None
    lower_bound_now: float | None
    status: Label | None  # None: it passes now

    @property
    def change(self) -> float | None:
        """How much the mean paired difference moved since the baseline (now − then)."""
        return _difference(self.mean_diff_now, self.mean_diff_then)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "config": self.config,
            "label": self.label,
            "verdict_then": self.verdict_then,
            "verdict_now": self.verdict_now,
            "mean_diff_then": self.mean_diff_then,
            "mean_diff_now": self.mean_diff_now,
            "change": self.change,
            "lower_bound_then": self.lower_bound_then,
            "lower_bound_now": self.lower_bound_now,
            "status": self.status,
        }


@dataclass(frozen=True)
class PromptChange:
    """One (config, prompt): its mean paired difference then → now."""

    suite: str
    config: str
    prompt: str
    delta_then: float | None
    delta_now: float | None

    @property
    def change(self) -> float | None:
        return _difference(self.delta_now, self.delta_then)

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "config": self.config,
            "prompt": self.prompt,
            "delta_then": self.delta_then,
            "delta_now": self.delta_now,
            "change": self.change,
        }


@dataclass(frozen=True)
class CaseChange:
    """A case that fails now, and how it fared in the baseline."""

    suite: str
    case_id: str
    outcome_then: str | None
    status: Label

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "case_id": self.case_id,
            "outcome_then": self.outcome_then,
            "status": self.status,
        }


@dataclass(frozen=True)
class Comparison:
    """This run against its baseline."""

    path: str
    run_id: str
    created: str
    lane_compatible: bool
    lane_reasons: tuple[str, ...]  # why the lanes differ (kept when the user overrode it)
    configs: tuple[ConfigChange, ...]
    prompts: tuple[PromptChange, ...]
    cases: tuple[CaseChange, ...]
    notes: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        """How many failing configs and cases are new, inherited or without a baseline."""
        counts = {"new": 0, "inherited": 0, "no baseline": 0}
        statuses = [c.status for c in self.configs] + [c.status for c in self.cases]
        for status in statuses:
            if status is not None:
                counts[status] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "run_id": self.run_id,
            "created": self.created,
            "lane_compatible": self.lane_compatible,
            "lane_reasons": list(self.lane_reasons),
            "counts": self.counts(),
            "configs": [c.to_dict() for c in self.configs],
            "prompts": [p.to_dict() for p in self.prompts],
            "cases": [c.to_dict() for c in self.cases],
            "notes": list(self.notes),
        }


def _config_status(verdict_then: str | None, verdict_now: str) -> Label | None:
    if config_passes(verdict_now) or verdict_now == "reference":
        return None
    if verdict_then is None or not (config_passes(verdict_then) or _judged_failing(verdict_then)):
        return "no baseline"
    return "new" if config_passes(verdict_then) else "inherited"


def _case_status(outcome_then: str | None) -> Label:
    if outcome_then in ("passed", "xfailed"):
        return "new"
    if outcome_then == "failed":
        return "inherited"
    return "no baseline"  # absent, errored (never judged), skipped


def compare(
    baseline: Baseline,
    summary: Mapping[str, Any],
    cases: Iterable[Mapping[str, Any]],
    *,
    any_lane: bool = False,
) -> Comparison:
    """This run's ``summary`` (summary.json's shape) and case records (results.jsonl rows:
    ``suite``, ``case_id``, ``outcome``) against ``baseline``.

    Raises :class:`BaselineError` when the baseline ran on another lane, unless ``any_lane``.
    """
    compatible, reasons = run_lanes_compatible(baseline.lanes, lanes_from_summary(summary))
    if not compatible and not any_lane:
        raise BaselineError(
            f"baseline {baseline.path} ran on another lane, so its images are not comparable "
            f"with this run's: {'; '.join(reasons)}",
            hint="use a baseline from this GPU/ComfyUI/torch/CUDA stack, or pass "
            "--zimage-baseline-any-lane to compare anyway",
        )
    notes = []
    if not compatible:
        notes.append(f"baseline from another lane, compared on request: {'; '.join(reasons)}")

    then_configs = _configs(baseline.summary)
    configs = []
    for key, now in _configs(summary).items():
        if now.role == "reference":
            continue
        then = then_configs.get(key)
        configs.append(
            ConfigChange(
                suite=key[0],
                config=key[1],
                label=now.label,
                verdict_then=then.verdict if then else None,
                verdict_now=now.verdict,
                mean_diff_then=then.mean_diff if then else None,
                mean_diff_now=now.mean_diff,
                lower_bound_then=then.lower_bound if then else None,
                lower_bound_now=now.lower_bound,
                status=_config_status(then.verdict if then else None, now.verdict),
            )
        )

    then_prompts = _prompt_deltas(baseline.summary)
    prompts = tuple(
        PromptChange(key[0], key[1], key[2], then_prompts.get(key), delta)
        for key, delta in _prompt_deltas(summary).items()
    )

    if baseline.cases is None:
        notes.append(
            f"the baseline's per-case results ({baseline.path.parent / 'results.jsonl'}) were "
            "not found: failing cases are labelled 'no baseline'"
        )
    then_cases = baseline.cases or {}
    failing = [
        key for key, outcome in _case_outcomes(cases).items() if outcome in ("failed", "xpassed")
    ]
    case_changes = tuple(
        CaseChange(key[0], key[1], then_cases.get(key), _case_status(then_cases.get(key)))
        for key in sorted(failing)
    )
    return Comparison(
        path=str(baseline.path),
        run_id=baseline.run_id,
        created=baseline.created,
        lane_compatible=compatible,
        lane_reasons=reasons,
        configs=tuple(configs),
        prompts=prompts,
        cases=case_changes,
        notes=tuple(notes),
    )
