"""A suite's frozen types: ``Suite`` (the workflow, where prompt and seed go, configs,
prompts, seeds, gate parameters, expected fails), ``Prompt``, ``ConfigSpec``, ``ExpectedFail``,
and ``Case``, one (prompt, config, seed) and its test id. Made by ``load_suite``; pure data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..metric_gates import MetricGateSpec
from ..workflow import Graph, InputRef, Workflow

__all__ = ["Case", "ConfigSpec", "ExpectedFail", "Prompt", "Suite", "case_id"]


@dataclass(frozen=True)
class Prompt:
    """One prompt: a short ``key`` used in test ids, the full ``text``, optional ``tags``, and
    the text its image should show (``expected_text``: declared, or quoted when the suite sets
    ``text_from_quotes``; None when the prompt asks for no text), and the ``stage`` (1, 2, ...)
    of the sequential design it belongs to (docs/gate.md)."""

    key: str
    text: str
    tags: tuple[str, ...] = ()
    expected_text: str | None = None
    stage: int = 1


@dataclass(frozen=True)
class ConfigSpec:
    """One config: a named set of input overrides on the workflow (model files, dtypes...)."""

    key: str
    label: str
    overrides: tuple[tuple[InputRef, Any], ...] = ()
    description: str = ""

    def override_map(self) -> dict[InputRef, Any]:
        return dict(self.overrides)


@dataclass(frozen=True)
class ExpectedFail:
    """An expected failure of a prompt (all configs) or of one (prompt, config) pair."""

    prompt: str
    config: str | None
    reason: str
    strict: bool | None = None


@dataclass(frozen=True)
class Case:
    """One (prompt, config, seed) of a suite: one image, one test."""

    suite: str
    prompt: Prompt
    config: ConfigSpec
    seed: int
    reference: str
    expected_fail: ExpectedFail | None = None

    @property
    def id(self) -> str:
        return case_id(self.prompt.key, self.config.key, self.seed)

    @property
    def is_reference(self) -> bool:
        return self.config.key == self.reference

    @property
    def reference_id(self) -> str:
        """Id of the reference case with the same prompt and seed."""
        return case_id(self.prompt.key, self.reference, self.seed)

    @property
    def key(self) -> tuple[str, str]:
        """(suite name, case id): unique across every suite of a run."""
        return (self.suite, self.id)


def case_id(prompt: str, config: str, seed: int) -> str:
    return f"{prompt}-{config}-s{seed}"


@dataclass(frozen=True)
class Suite:
    """A validated suite file."""

    name: str
    path: Path
    workflow: Workflow = field(compare=False, repr=False)
    text_input: InputRef
    seed_input: InputRef
    output_node: str
    reference: str
    configs: tuple[ConfigSpec, ...]
    prompts: tuple[Prompt, ...]
    seeds: tuple[int, ...]
    expected_fail: tuple[ExpectedFail, ...] = ()
    description: str = ""
    tolerance: float | None = None
    margin: float | None = None
    alpha: float | None = None
    clip_floor: float | None = None
    revision: str = ""
    sha256: str = ""
    #: the metric the per-config gate runs on (a reference-free one, e.g. "text_accuracy")
    gate_metric: str = "clipscore"
    #: (sd_between, sd_within) of the paired CLIPScore difference from [suite.prior], if given
    prior: tuple[float, float] | None = None
    #: further gated metrics from [gate.metrics.<name>] (metric_gates.py, docs/metrics.md)
    metric_gates: tuple[MetricGateSpec, ...] = ()
    #: the reference-based metric read on the two axes, and its closeness threshold if given
    distance_metric: str = "lpips"
    distance_close: float | None = None

    # -- lookups -------------------------------------------------------------------------
    def config(self, key: str) -> ConfigSpec:
        for config in self.configs:
            if config.key == key:
                return config
        raise KeyError(key)

    def prompt(self, key: str) -> Prompt:
        for prompt in self.prompts:
            if prompt.key == key:
                return prompt
        raise KeyError(key)

    @property
    def stages(self) -> tuple[int, ...]:
        """The stages its prompts declare, in order ((1,) for a suite without stages)."""
        return tuple(sorted({p.stage for p in self.prompts}))

    @property
    def reference_config(self) -> ConfigSpec:
        return self.config(self.reference)

    @property
    def candidate_configs(self) -> tuple[ConfigSpec, ...]:
        return tuple(c for c in self.configs if c.key != self.reference)

    def expected_fail_for(self, prompt: str, config: str) -> ExpectedFail | None:
        """The pair-specific declaration wins over the prompt-wide one."""
        pair = [x for x in self.expected_fail if x.prompt == prompt and x.config == config]
        if pair:
            return pair[0]
        wide = [x for x in self.expected_fail if x.prompt == prompt and x.config is None]
        return wide[0] if wide else None

    # -- cases ---------------------------------------------------------------------------
    def make_case(self, prompt: str, config: str, seed: int) -> Case:
        return Case(
            suite=self.name,
            prompt=self.prompt(prompt),
            config=self.config(config),
            seed=seed,
            reference=self.reference,
            expected_fail=self.expected_fail_for(prompt, config),
        )

    def cases(
        self,
        *,
        configs: Iterable[str] | None = None,
        prompts: Iterable[str] | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[Case]:
        """Cases in collection order: stage by stage, and within a stage the reference config
        first, then each config's block (a suite without stages is one stage).

        ``configs`` and ``prompts`` filter (unknown keys raise KeyError with the key);
        ``seeds`` replaces the suite's seeds.
        """
        wanted_configs = self._select(configs, [c.key for c in self.configs], "config")
        wanted_prompts = self._select(prompts, [p.key for p in self.prompts], "prompt")
        use_seeds = tuple(seeds) if seeds is not None else self.seeds
        ordered = [self.reference_config, *self.candidate_configs]
        return [
            self.make_case(prompt.key, config.key, seed)
            for stage in self.stages
            for config in ordered
            if config.key in wanted_configs
            for prompt in self.prompts
            if prompt.key in wanted_prompts and prompt.stage == stage
            for seed in use_seeds
        ]

    @staticmethod
    def _select(chosen: Iterable[str] | None, known: list[str], what: str) -> set[str]:
        if chosen is None:
            return set(known)
        chosen = list(chosen)
        unknown = [key for key in chosen if key not in known]
        if unknown:
            raise KeyError(f"unknown {what} {unknown[0]!r} (the suite has: {', '.join(known)})")
        return set(chosen)

    def graph_for(self, case: Case, *, prefix: str | None = None) -> Graph:
        """The graph that generates ``case``'s image; ``prefix`` sets filename_prefix."""
        return self.workflow.render(
            text=(self.text_input, case.prompt.text),
            seed=(self.seed_input, case.seed),
            overrides=case.config.override_map(),
            prefix=(self.prefix_input, prefix) if prefix is not None else None,
        )

    @property
    def prefix_input(self) -> InputRef:
        return InputRef(self.output_node, "filename_prefix")
