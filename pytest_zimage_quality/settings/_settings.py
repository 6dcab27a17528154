"""The frozen ``Settings``: every option after precedence, one field per ``OPTIONS`` row
with the row's default; and ``GateParameters``, one suite's gate after option > suite file >
default."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..hosts import HostAddress as HostSpec
from ._table import GATE_PARAMETERS, OPTIONS, default

__all__ = ["GateParameters", "Settings", "SuiteValues"]


def _field_default(name: str) -> Any:
    return OPTIONS[name].settings_default


class SuiteValues(Protocol):
    """What a suite file may set of the options (``suite.Suite`` has these)."""

    @property
    def tolerance(self) -> float | None: ...
    @property
    def margin(self) -> float | None: ...
    @property
    def alpha(self) -> float | None: ...
    @property
    def clip_floor(self) -> float | None: ...
    @property
    def seeds(self) -> tuple[int, ...]: ...
    @property
    def revision(self) -> str: ...
    @property
    def gate_metric(self) -> str: ...


@dataclass(frozen=True)
class GateParameters:
    """Gate parameters of one suite after precedence; ``sources`` says where each came from."""

    tolerance: float
    margin: float
    alpha: float
    clip_floor: float
    sources: tuple[tuple[str, str], ...] = ()

    def source(self, name: str) -> str:
        return dict(self.sources).get(name, "default")


@dataclass(frozen=True)
class Settings:
    """Every zimage option after precedence: one field per ``OPTIONS`` row, defaulting to
    the row's (tests/test_options.py checks that they match), plus the root directory."""

    hosts: tuple[HostSpec, ...] = _field_default("hosts")
    headers: tuple[tuple[str, str], ...] = field(default=_field_default("headers"), repr=False)
    suite_path: Path | None = None  # a path option has no built-in value
    configs: tuple[str, ...] | None = _field_default("configs")
    prompts: tuple[str, ...] | None = _field_default("prompts")
    seeds: tuple[int, ...] | None = _field_default("seeds")
    tolerance: float | None = _field_default("tolerance")
    margin: float | None = _field_default("margin")
    alpha: float | None = _field_default("alpha")
    clip_floor: float | None = _field_default("clip_floor")
    lpips_close: float = _field_default("lpips_close")
    per_prompt_gate: bool = _field_default("per_prompt_gate")
    advisory: bool = _field_default("advisory")
    band: str = _field_default("band")
    band_sd: float = _field_default("band_sd")
    prior: Path | None = None  # a path option has no built-in value
    plan: bool = _field_default("plan")
    xfail_strict: bool = _field_default("xfail_strict")
    device: str = _field_default("device")
    weights: str = _field_default("weights")
    precision: str = _field_default("precision")
    clip_model: str = _field_default("clip_model")
    clip_pretrained: str = _field_default("clip_pretrained")
    lpips_net: str = _field_default("lpips_net")
    lpips_weights: Path | None = None  # a path option has no built-in value
    score_memory: int = _field_default("score_memory")
    report_dir: Path | None = None  # a path option has no built-in value
    cache_dir: Path | None = None  # a path option has no built-in value
    refresh: bool = _field_default("refresh")
    revision: str | None = _field_default("revision")
    timeout: float = _field_default("timeout")
    queue_depth: int = _field_default("queue_depth")
    baseline: Path | None = None  # a path option has no built-in value
    baseline_any_lane: bool = _field_default("baseline_any_lane")
    history: Path | None = None  # a path option has no built-in value
    recheck: int = _field_default("recheck")
    vram_interval: float = _field_default("vram_interval")
    infra_exit_status: bool = _field_default("infra_exit_status")
    gate_metric: str | None = _field_default("gate_metric")
    markdown: Path | None = None  # a path option has no built-in value
    step_summary: bool = _field_default("step_summary")
    hosts_file: Path | None = None  # a path option has no built-in value
    comfyui: str | None = _field_default("comfyui")
    gpus: tuple[str, ...] | None = _field_default("gpus")
    cpu_servers: int = _field_default("cpu_servers")
    comfyui_args: tuple[str, ...] = _field_default("comfyui_args")
    launch_timeout: float = _field_default("launch_timeout")
    ray: str | None = _field_default("ray")
    ray_servers: int | None = _field_default("ray_servers")
    pin_pairs: str = _field_default("pin_pairs")
    rootpath: Path = field(default_factory=Path.cwd)

    @property
    def header_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.headers)

    @property
    def simulated(self) -> bool:
        return any(h.simulated for h in self.hosts)

    @property
    def random_weights(self) -> bool:
        return self.weights == "random"

    def gate_for(self, suite: SuiteValues) -> GateParameters:
        """This run's gate parameters for ``suite``: option > suite file > default."""
        values: dict[str, float] = {}
        sources: list[tuple[str, str]] = []
        for name in GATE_PARAMETERS:
            option, in_suite = getattr(self, name), getattr(suite, name)
            if option is not None:
                values[name], source = option, "option"
            elif in_suite is not None:
                values[name], source = in_suite, "suite file"
            else:
                values[name], source = default(name), "default"
            sources.append((name, source))
        return GateParameters(**values, sources=tuple(sources))

    def gate_for_defaults(self) -> GateParameters:
        """Gate parameters when the suite file is not at hand: options, else defaults."""
        values = {
            name: getattr(self, name) if getattr(self, name) is not None else default(name)
            for name in GATE_PARAMETERS
        }
        sources = tuple(
            (name, "option" if getattr(self, name) is not None else "default") for name in values
        )
        return GateParameters(**values, sources=sources)

    def seeds_for(self, suite: SuiteValues) -> tuple[int, ...]:
        return self.seeds if self.seeds is not None else suite.seeds

    def gate_metric_for(self, suite: SuiteValues | None) -> str:
        """The metric ``suite`` is gated on: option (command line, then ini) > suite file >
        default (the suite file's value is the default when it names none)."""
        if self.gate_metric is not None:
            return self.gate_metric
        return suite.gate_metric if suite is not None else str(default("gate_metric"))

    def cache_revision(self, suite: SuiteValues) -> str:
        return self.revision if self.revision is not None else suite.revision
