"""Every zimage option in one table, the parsers of its values, and the frozen ``Settings``.

One row of ``OPTIONS`` is the only definition of an option: its command-line flag, ini key,
environment variable, parser (with its range or choices), built-in default and help. The
pytest layer (``options.py``) registers the flags and ini keys from it and reads them in
one order, command line > environment > ini > suite file > default; ``Settings`` takes its
defaults from it; ``suite.py`` validates the gate parameters of a suite file with the same
ranges. Adding an option is adding one row (and its ``Settings`` field).

Pure core: nothing here imports pytest, so the pipeline below the pytest layer can use
``Settings`` and the scorers can take their defaults from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..hosts import SIMULATED_HOST
from ..hosts import HostAddress as HostSpec
from ._option import Option
from ._parsers import (
    MAX_SEED,
    Bounds,
    Choice,
    parse_alpha,
    parse_arguments,
    parse_band,
    parse_band_sd,
    parse_bool,
    parse_clip_floor,
    parse_comfyui,
    parse_cpu_servers,
    parse_device,
    parse_gpus,
    parse_header,
    parse_host,
    parse_keys,
    parse_lpips_close,
    parse_lpips_net,
    parse_margin,
    parse_metric_name,
    parse_pin_pairs,
    parse_precision,
    parse_queue_depth,
    parse_ray_servers,
    parse_recheck,
    parse_score_memory,
    parse_seeds,
    parse_timeout,
    parse_tolerance,
    parse_vram_interval,
    parse_weights,
)

__all__ = [
    "GATE_PARAMETERS",
    "MAX_SEED",
    "OPTIONS",
    "REMOVED_OPTIONS",
    "SIMULATED_HOST",
    "Bounds",
    "Choice",
    "GateParameters",
    "HostSpec",
    "Option",
    "Settings",
    "default",
    "parse_alpha",
    "parse_band",
    "parse_band_sd",
    "parse_bool",
    "parse_clip_floor",
    "parse_device",
    "parse_header",
    "parse_host",
    "parse_keys",
    "parse_lpips_close",
    "parse_lpips_net",
    "parse_margin",
    "parse_metric_name",
    "parse_precision",
    "parse_queue_depth",
    "parse_recheck",
    "parse_score_memory",
    "parse_seeds",
    "parse_timeout",
    "parse_tolerance",
    "parse_vram_interval",
    "parse_weights",
]

# ---------------------------------------------------------------------------------------
# the table

OPTIONS: Mapping[str, Option] = {
    opt.name: opt
    for opt in (
        Option(
            "hosts",
            parse_host,
            "ComfyUI host to generate on: host:port, http(s)://host:port, or 'simulated' "
            "for the built-in fake server (dry run). Repeatable. Also $ZIMAGE_HOST.",
            "HOST",
            default=(),
            default_text="none (the zimage cases are skipped)",
            kind="list",
            flag="--zimage-host",
            ini="zimage_host",
            env="ZIMAGE_HOST",
        ),
        Option(
            "headers",
            parse_header,
            "extra HTTP header for an authenticated host; values are never printed. Repeatable.",
            "'NAME: VALUE'",
            default=(),
            default_text="none",
            kind="list",
            flag="--zimage-header",
            ini="zimage_headers",
        ),
        Option(
            "suite_path",
            str,
            "suite file whose cases parametrize Python tests that use the zimage_case fixture.",
            "PATH",
            default_text="none",
            kind="path",
            flag="--zimage-suite",
            ini="zimage_suite",
        ),
        Option(
            "configs",
            parse_keys,
            "run only these configs (comma-separated keys); the reference is still generated "
            "where candidates need it.",
            "KEYS",
            default_text="every config",
        ),
        Option(
            "prompts", parse_keys, "run only these prompts.", "KEYS", default_text="every prompt"
        ),
        Option(
            "seeds",
            parse_seeds,
            "use these seeds instead of the suite's (comma-separated).",
            "SEEDS",
            default_text="the suite file's",
            in_suite=True,
        ),
        Option(
            "tolerance",
            parse_tolerance,
            "per-case: fail when CLIPScore < reference - DELTA.",
            "DELTA",
            default=0.04,
            in_suite=True,
        ),
        Option(
            "margin",
            parse_margin,
            "per-config non-inferiority margin on the mean CLIPScore drop.",
            "DELTA",
            default=0.01,
            in_suite=True,
        ),
        Option(
            "alpha",
            parse_alpha,
            "one-sided level of the per-config gate.",
            "ALPHA",
            default=0.05,
            in_suite=True,
        ),
        Option(
            "clip_floor",
            parse_clip_floor,
            "lowest CLIPScore a reference image may have.",
            "SCORE",
            default=0.20,
            in_suite=True,
        ),
        Option(
            "lpips_close",
            parse_lpips_close,
            "mean LPIPS below which a config counts as 'close' to the reference.",
            "DIST",
            default=0.20,
        ),
        Option(
            "per_prompt_gate",
            parse_bool,
            "also fail the run when a prompt's corrected per-prompt test flags a drop.",
            default=False,
            kind="switch",
        ),
        Option(
            "advisory",
            parse_bool,
            "compute and show the gate, labelled ADVISORY in every output, but never let its "
            "verdict set the exit status (the per-case tests still do).",
            default=False,
            kind="switch",
        ),
        Option(
            "band",
            parse_band,
            "per-case band: 'scaled' widens the tolerance with the number of candidate cases so "
            "a healthy run fails no case with probability >= 0.95; 'fixed' is the tolerance alone.",
            "scaled|fixed",
            default="scaled",
        ),
        Option(
            "band_sd",
            parse_band_sd,
            "image-level SD of the paired CLIPScore difference the scaled band tolerates.",
            "SD",
            default=0.02,
        ),
        Option(
            "prior",
            str,
            "a previous run's summary.json: its observed spreads plan this run's power "
            "(instead of the suite file's [suite.prior] or the study's defaults).",
            "FILE",
            default_text="the suite file's [suite.prior], else the study's defaults",
            kind="path",
        ),
        Option(
            "plan",
            parse_bool,
            "print each suite's power plan and per-case band, then exit without generating "
            "anything (no server needed).",
            default=False,
            kind="switch",
        ),
        Option(
            "xfail_strict",
            parse_bool,
            "expected-fail cases that pass fail the run (a suite's strict = ... wins).",
            default=False,
            default_text="pytest's xfail_strict",
            flag=None,
            ini_fallback="xfail_strict",
        ),
        Option(
            "device",
            parse_device,
            "scorer device: auto (first CUDA GPU, else CPU), cpu, cuda, cuda:N.",
            "DEVICE",
            default="auto",
        ),
        Option(
            "weights",
            parse_weights,
            "scorer weights; 'random' initialises the networks randomly (dry runs and tests: "
            "NOT a quality measurement).",
            "pretrained|random",
            default="pretrained",
        ),
        Option(
            "precision",
            parse_precision,
            "scorer numerics: fp32 is exact to the libraries' own paths (docs/scorers.md: TF32 "
            "and bf16 move the scores measurably).",
            "fp32|tf32|bf16",
            default="fp32",
        ),
        Option("clip_model", str, "open_clip model name.", "NAME", default="ViT-B-32"),
        Option(
            "clip_pretrained",
            str,
            "open_clip pretrained tag, or a local weights file.",
            "TAG|FILE",
            # LAION-2B, trained with the standard GELU that ViT-B-32 builds. (OpenAI's
            # weights need QuickGELU: model ViT-B-32-quickgelu with tag openai.)
            default="laion2b_s34b_b79k",
        ),
        Option("lpips_net", parse_lpips_net, "LPIPS trunk network.", "alex|vgg", default="alex"),
        Option(
            "lpips_weights",
            str,
            "local file of the LPIPS trunk's ImageNet weights.",
            "FILE",
            default_text="torchvision's cache under $TORCH_HOME",
            kind="path",
        ),
        Option(
            "score_memory",
            parse_score_memory,
            "memory budget of one scorer call on the scorers' device (GPU or CPU), in MiB: "
            "scoring batches are split so that each metric's estimated working memory stays "
            "within it (at least one image per call; docs/reliability.md).",
            "MIB",
            default=256,
        ),
        Option(
            "report_dir",
            str,
            "where results.jsonl, summary.json, report.html and images go.",
            "DIR",
            default_text="zimage/report under pytest's cache dir",
            kind="path",
        ),
        Option(
            "cache_dir",
            str,
            "content-addressed image cache.",
            "DIR",
            default_text="zimage/images under pytest's cache dir",
            kind="path",
        ),
        Option(
            "refresh",
            parse_bool,
            "ignore cached images and make the server run every graph again.",
            default=False,
            kind="switch",
        ),
        Option(
            "revision",
            str,
            "free text folded into the image cache key (bump it when a model file changes "
            "in place).",
            "TEXT",
            default_text="the suite's revision",
            in_suite=True,
        ),
        Option(
            "timeout",
            parse_timeout,
            "longest wait for one generation.",
            "SECONDS",
            default=600.0,
        ),
        Option(
            "queue_depth",
            parse_queue_depth,
            "how many of this run's prompts to keep queued on the server.",
            "N",
            default=2,
        ),
        Option(
            "baseline",
            str,
            "a previous run's summary.json or report directory (e.g. main's last green run's "
            "report artifact): show each config's and prompt's change since then and label each "
            "failure new, inherited or no baseline.",
            "PATH",
            default_text="none",
            kind="path",
        ),
        Option(
            "history",
            str,
            "a directory of stored runs' summary.json files: report.html charts each config's "
            "Δ and verdict across them, and the run stores its own summary.json there.",
            "DIR",
            default_text="none",
            kind="path",
        ),
        Option(
            "baseline_any_lane",
            parse_bool,
            "compare with a baseline from another lane (GPU, ComfyUI, torch, CUDA) anyway; by "
            "default such a baseline is refused, its images not being comparable.",
            default=False,
            kind="switch",
        ),
        Option(
            "recheck",
            parse_recheck,
            "the determinism check: regenerate N reference cases the image cache holds "
            "(the same N every run, chosen by their ids' hash) and compare them with the cached "
            "images: the measured noise floor, shown next to the margin δ (--zimage-refresh "
            "checks every cached image).",
            "N",
            default=0,
        ),
        Option(
            "vram_interval",
            parse_vram_interval,
            "seconds between samples of each server's VRAM (GET /system_stats) while it "
            "generates, for the peak VRAM per config beside the speedup; 0 turns sampling off.",
            "SECONDS",
            default=0.25,
        ),
        Option(
            "infra_exit_status",
            parse_bool,
            "exit with status 75 (EX_TEMPFAIL) when the only problems were infrastructure "
            "errors (host unreachable, server error, timeout, corrupt image): no quality failure "
            "and no config judged worse, so CI can retry the run instead of blocking the change.",
            default=False,
            kind="switch",
        ),
        Option(
            "gate_metric",
            parse_metric_name,
            "the metric each candidate config is gated on (non-inferior to the reference): "
            "clipscore, text_accuracy or a registered scorer's name; it must compare an image "
            "with its prompt, not with the reference image (docs/metrics.md).",
            "NAME",
            default="clipscore",
            in_suite=True,
        ),
        Option(
            "markdown",
            str,
            "also write the run's summary as Markdown (verdicts, per-prompt table, worst cases, "
            "provenance) to this file, for a pull request.",
            "PATH",
            default_text="none",
            kind="path",
        ),
        Option(
            "step_summary",
            parse_bool,
            "append the Markdown summary to $GITHUB_STEP_SUMMARY when GitHub Actions sets it.",
            "yes|no",
            default=True,
        ),
        Option(
            "hosts_file",
            str,
            "file listing more ComfyUI hosts for the pool, one per line ('#' comments).",
            "FILE",
            default_text="none",
            kind="path",
        ),
        Option(
            "comfyui",
            parse_comfyui,
            "start one ComfyUI server per local GPU from this installation (its main.py or "
            "folder) and add them to the pool; 'fake' starts the built-in fake server instead.",
            "PATH|fake",
            default_text="none",
        ),
        Option(
            "gpus",
            parse_gpus,
            "the GPUs to start servers on (comma-separated indices or UUIDs), or 'all'.",
            "IDS|all",
            default_text="all visible GPUs",
            env="ZIMAGE_GPUS",
        ),
        Option(
            "cpu_servers",
            parse_cpu_servers,
            "servers to start without a GPU when none is found (ComfyUI --cpu).",
            "N",
            default=0,
        ),
        Option(
            "comfyui_args",
            parse_arguments,
            "extra arguments for each started ComfyUI server (shell syntax).",
            "ARGS",
            default=(),
            default_text="none",
        ),
        Option(
            "launch_timeout",
            parse_timeout,
            "longest wait for a started server to answer.",
            "SECONDS",
            default=300.0,
        ),
        Option(
            "ray",
            str,
            "start one ComfyUI server per GPU of a Ray cluster: 'auto' (this machine's "
            "cluster), 'local' (a one-machine cluster) or its address; needs --zimage-comfyui "
            "and the [ray] extra.",
            "auto|local|ADDRESS",
            default_text="none",
        ),
        Option(
            "ray_servers",
            parse_ray_servers,
            "how many servers to start on the Ray cluster.",
            "N",
            default_text="one per cluster GPU",
        ),
        Option(
            "pin_pairs",
            parse_pin_pairs,
            "keep each (prompt, seed) on one server: 'auto' where the determinism check finds "
            "servers of one hardware class drawing different images, 'always' or 'never'.",
            "auto|always|never",
            default="auto",
        ),
    )
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


def _field_default(name: str) -> Any:
    return OPTIONS[name].settings_default


# ---------------------------------------------------------------------------------------
# resolved settings


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
