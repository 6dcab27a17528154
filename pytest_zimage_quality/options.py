"""Command-line and ini options, their parsers, and the frozen ``Settings`` they resolve into.

Precedence, applied here and nowhere else: command line > environment (hosts only) > ini >
suite file (gate parameters and seeds) > built-in default. A bad value is a one-line usage
error before any work starts: argparse reports command-line values, ``pytest.UsageError``
reports ini values. Only ``Settings.from_config`` reads options.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import pytest

from .hosts import SIMULATED_HOST, HostAddressError
from .hosts import HostAddress as HostSpec
from .hosts import parse_host as parse_host_address

if TYPE_CHECKING:
    from .suite import Suite

__all__ = [
    "DEFAULTS",
    "SIMULATED_HOST",
    "GateParameters",
    "HostSpec",
    "Settings",
    "register_options",
]

T = TypeVar("T")

DEFAULT_CLIP_MODEL = "ViT-B-32"
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"


@dataclass(frozen=True)
class _Defaults:
    tolerance: float = 0.04
    margin: float = 0.01
    alpha: float = 0.05
    clip_floor: float = 0.20
    lpips_close: float = 0.20
    timeout: float = 600.0
    queue_depth: int = 2
    device: str = "auto"
    weights: str = "pretrained"
    lpips_net: str = "alex"
    inconclusive: str = "fail"
    precision: str = "fp32"


DEFAULTS = _Defaults()


# ---------------------------------------------------------------------------------------
# value parsers: each raises argparse.ArgumentTypeError with a one-line reason


def parse_host(text: str) -> HostSpec:
    """An address in the one grammar of :mod:`pytest_zimage_quality.hosts`."""
    try:
        return parse_host_address(text)
    except HostAddressError as exc:  # its message never shows a password
        raise argparse.ArgumentTypeError(str(exc)) from None


_HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def parse_header(text: str) -> tuple[str, str]:
    """``Name: value`` for an authenticated host; the value is never printed."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not _HEADER_NAME_RE.match(name):
        raise argparse.ArgumentTypeError(
            "a header must look like 'Name: value' (e.g. 'Authorization: Bearer ...')"
        )
    return name, value.strip()


def _number(kind: Callable[[str], T], low: float, high: float, what: str) -> Callable[[str], T]:
    def parse(text: str) -> T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {what}") from None
        if not low <= value <= high:  # type: ignore[operator]
            raise argparse.ArgumentTypeError(f"{text!r} is out of range [{low}, {high}]")
        return value

    parse.__name__ = what
    return parse


parse_tolerance = _number(float, 0.0, 2.0, "CLIPScore difference")
parse_alpha = _number(float, 1e-9, 0.5, "significance level in (0, 0.5]")
parse_score = _number(float, -1.0, 1.0, "cosine similarity in [-1, 1]")
parse_lpips = _number(float, 0.0, 10.0, "LPIPS distance")
parse_timeout = _number(float, 0.001, 7 * 24 * 3600.0, "number of seconds")
parse_depth = _number(int, 1, 1024, "whole number of queued prompts")


def parse_keys(text: str) -> tuple[str, ...]:
    """A comma- or space-separated list of keys."""
    keys = tuple(k for k in re.split(r"[,\s]+", text.strip()) if k)
    if not keys:
        raise argparse.ArgumentTypeError("expected at least one key, comma-separated")
    return keys


def parse_seeds(text: str) -> tuple[int, ...]:
    seeds: list[int] = []
    for part in parse_keys(text):
        if not part.isdigit() or int(part) > 2**64 - 1:
            raise argparse.ArgumentTypeError(f"seed {part!r} is not a whole number in [0, 2**64-1]")
        if int(part) not in seeds:
            seeds.append(int(part))
    return tuple(seeds)


def parse_device(text: str) -> str:
    value = text.strip().lower()
    if value in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", value):
        return value
    raise argparse.ArgumentTypeError(f"{text!r} is not a device (auto, cpu, cuda, cuda:N or mps)")


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {', '.join(choices)}")
        return value

    return parse


parse_weights = _choice("pretrained", "random")
parse_lpips_net = _choice("alex", "vgg")
parse_inconclusive = _choice("pass", "fail")
parse_precision = _choice("fp32", "tf32", "bf16")


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


# ---------------------------------------------------------------------------------------
# registration


@dataclass(frozen=True)
class _Option:
    flag: str
    ini: str | None
    parse: Callable[[str], Any] | None
    metavar: str
    help: str
    default: object = None
    append: bool = False
    flag_only: bool = False


_OPTIONS: tuple[_Option, ...] = (
    _Option(
        "--zimage-host",
        "zimage_host",
        parse_host,
        "HOST",
        "ComfyUI host to generate on: host:port, http(s)://host:port, or 'simulated' for "
        "the built-in fake server (dry run). Repeatable. Also $ZIMAGE_HOST.",
        append=True,
    ),
    _Option(
        "--zimage-header",
        "zimage_headers",
        parse_header,
        "'NAME: VALUE'",
        "extra HTTP header for an authenticated host; values are never printed. Repeatable.",
        append=True,
    ),
    _Option(
        "--zimage-suite",
        "zimage_suite",
        str,
        "PATH",
        "suite file whose cases parametrize Python tests that use the zimage_case fixture.",
    ),
    _Option(
        "--zimage-configs",
        "zimage_configs",
        parse_keys,
        "KEYS",
        "run only these configs (comma-separated keys); the reference is still generated "
        "where candidates need it.",
    ),
    _Option("--zimage-prompts", "zimage_prompts", parse_keys, "KEYS", "run only these prompts."),
    _Option(
        "--zimage-seeds",
        "zimage_seeds",
        parse_seeds,
        "SEEDS",
        "use these seeds instead of the suite's (comma-separated).",
    ),
    _Option(
        "--zimage-tolerance",
        "zimage_tolerance",
        parse_tolerance,
        "DELTA",
        f"per-case: fail when CLIPScore < reference - DELTA. Default: suite file, else {DEFAULTS.tolerance}.",
    ),
    _Option(
        "--zimage-margin",
        "zimage_margin",
        parse_tolerance,
        "DELTA",
        f"per-config non-inferiority margin on the mean CLIPScore drop. Default: suite file, else {DEFAULTS.margin}.",
    ),
    _Option(
        "--zimage-alpha",
        "zimage_alpha",
        parse_alpha,
        "ALPHA",
        f"one-sided level of the per-config gate. Default: suite file, else {DEFAULTS.alpha}.",
    ),
    _Option(
        "--zimage-clip-floor",
        "zimage_clip_floor",
        parse_score,
        "SCORE",
        f"lowest CLIPScore a reference image may have. Default: suite file, else {DEFAULTS.clip_floor}.",
    ),
    _Option(
        "--zimage-lpips-close",
        "zimage_lpips_close",
        parse_lpips,
        "DIST",
        f"mean LPIPS below which a config counts as 'close' to the reference. Default: {DEFAULTS.lpips_close}.",
        default=DEFAULTS.lpips_close,
    ),
    _Option(
        "--zimage-inconclusive",
        "zimage_inconclusive",
        parse_inconclusive,
        "pass|fail",
        "exit status of a gate that passed without the power to detect the margin. "
        f"Default: {DEFAULTS.inconclusive!r}.",
        default=DEFAULTS.inconclusive,
    ),
    _Option(
        "--zimage-per-prompt-gate",
        "zimage_per_prompt_gate",
        parse_bool,
        "",
        "also fail the run when a prompt's corrected per-prompt test flags a drop.",
        default=False,
        flag_only=True,
    ),
    _Option(
        "--zimage-device",
        "zimage_device",
        parse_device,
        "DEVICE",
        f"scorer device: auto (first CUDA GPU, else CPU), cpu, cuda, cuda:N. Default: {DEFAULTS.device!r}.",
        default=DEFAULTS.device,
    ),
    _Option(
        "--zimage-weights",
        "zimage_weights",
        parse_weights,
        "pretrained|random",
        "scorer weights; 'random' initialises the networks randomly (dry runs and tests: "
        f"NOT a quality measurement). Default: {DEFAULTS.weights!r}.",
        default=DEFAULTS.weights,
    ),
    _Option(
        "--zimage-precision",
        "zimage_precision",
        parse_precision,
        "fp32|tf32|bf16",
        "scorer numerics: fp32 is exact to the libraries' own paths (docs/scorers.md: TF32 and "
        f"bf16 move the scores measurably). Default: {DEFAULTS.precision!r}.",
        default=DEFAULTS.precision,
    ),
    _Option(
        "--zimage-clip-model",
        "zimage_clip_model",
        str,
        "NAME",
        f"open_clip model name. Default: {DEFAULT_CLIP_MODEL!r}.",
        default=DEFAULT_CLIP_MODEL,
    ),
    _Option(
        "--zimage-clip-pretrained",
        "zimage_clip_pretrained",
        str,
        "TAG|FILE",
        f"open_clip pretrained tag, or a local weights file. Default: {DEFAULT_CLIP_PRETRAINED!r}.",
        default=DEFAULT_CLIP_PRETRAINED,
    ),
    _Option(
        "--zimage-lpips-net",
        "zimage_lpips_net",
        parse_lpips_net,
        "alex|vgg",
        f"LPIPS trunk network. Default: {DEFAULTS.lpips_net!r}.",
        default=DEFAULTS.lpips_net,
    ),
    _Option(
        "--zimage-lpips-weights",
        "zimage_lpips_weights",
        str,
        "FILE",
        "local file of the LPIPS trunk's ImageNet weights (else torchvision's cache under $TORCH_HOME).",
    ),
    _Option(
        "--zimage-report-dir",
        "zimage_report_dir",
        str,
        "DIR",
        "where results.jsonl, summary.json, report.html and images go. "
        "Default: zimage/report under pytest's cache dir.",
    ),
    _Option(
        "--zimage-cache-dir",
        "zimage_cache_dir",
        str,
        "DIR",
        "content-addressed image cache. Default: zimage/images under pytest's cache dir.",
    ),
    _Option(
        "--zimage-refresh",
        "zimage_refresh",
        parse_bool,
        "",
        "ignore cached images and make the server run every graph again.",
        default=False,
        flag_only=True,
    ),
    _Option(
        "--zimage-revision",
        "zimage_revision",
        str,
        "TEXT",
        "free text folded into the image cache key (bump it when a model file changes "
        "in place). Default: the suite's revision.",
    ),
    _Option(
        "--zimage-timeout",
        "zimage_timeout",
        parse_timeout,
        "SECONDS",
        f"longest wait for one generation. Default: {DEFAULTS.timeout:g}.",
        default=DEFAULTS.timeout,
    ),
    _Option(
        "--zimage-queue-depth",
        "zimage_queue_depth",
        parse_depth,
        "N",
        f"how many of this run's prompts to keep queued on the server. Default: {DEFAULTS.queue_depth}.",
        default=DEFAULTS.queue_depth,
    ),
)


def register_options(parser: pytest.Parser) -> None:
    """Add the ``zimage`` option group and the matching ini keys."""
    group = parser.getgroup("zimage", "Z-Image quality gate")
    for opt in _OPTIONS:
        dest = opt.flag.lstrip("-").replace("-", "_")
        default_note = "" if opt.default in (None, False) else f" Default: {opt.default!r}."
        if opt.flag_only:
            group.addoption(opt.flag, action="store_true", default=None, dest=dest, help=opt.help)
        else:
            group.addoption(
                opt.flag,
                action="append" if opt.append else "store",
                type=opt.parse,
                default=None,
                dest=dest,
                metavar=opt.metavar,
                help=opt.help,
            )
        if opt.ini:
            ini_type: Literal["linelist", "string"] = "linelist" if opt.append else "string"
            parser.addini(
                opt.ini,
                f"{opt.help}{'' if 'Default' in opt.help else default_note}".strip(),
                type=ini_type,
                default=[] if opt.append else "",
            )
    parser.addini(
        "zimage_xfail_strict",
        "expected-fail cases that pass fail the run (a suite's strict = ... wins). Default: pytest's xfail_strict.",
        type="string",
        default="",
    )


# ---------------------------------------------------------------------------------------
# resolution


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
    """Every zimage option after precedence, resolved once in ``pytest_configure``."""

    hosts: tuple[HostSpec, ...] = ()
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    suite_path: Path | None = None
    configs: tuple[str, ...] | None = None
    prompts: tuple[str, ...] | None = None
    seeds: tuple[int, ...] | None = None
    tolerance: float | None = None
    margin: float | None = None
    alpha: float | None = None
    clip_floor: float | None = None
    lpips_close: float = DEFAULTS.lpips_close
    inconclusive: str = DEFAULTS.inconclusive
    per_prompt_gate: bool = False
    xfail_strict: bool = False
    device: str = DEFAULTS.device
    weights: str = DEFAULTS.weights
    precision: str = DEFAULTS.precision
    clip_model: str = DEFAULT_CLIP_MODEL
    clip_pretrained: str = DEFAULT_CLIP_PRETRAINED
    lpips_net: str = DEFAULTS.lpips_net
    lpips_weights: Path | None = None
    report_dir: Path | None = None
    cache_dir: Path | None = None
    refresh: bool = False
    revision: str | None = None
    timeout: float = DEFAULTS.timeout
    queue_depth: int = DEFAULTS.queue_depth
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

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        reader = _Reader(config)
        hosts = reader.hosts()
        if len(hosts) > 1 and any(h.simulated for h in hosts):
            raise pytest.UsageError(
                "--zimage-host=simulated cannot be combined with real hosts: "
                "a dry run and a measurement must not mix"
            )
        return cls(
            hosts=hosts,
            headers=tuple(reader.get("--zimage-header", parse_header) or ()),
            suite_path=reader.path("--zimage-suite"),
            configs=reader.get("--zimage-configs", parse_keys),
            prompts=reader.get("--zimage-prompts", parse_keys),
            seeds=reader.get("--zimage-seeds", parse_seeds),
            tolerance=reader.get("--zimage-tolerance", parse_tolerance),
            margin=reader.get("--zimage-margin", parse_tolerance),
            alpha=reader.get("--zimage-alpha", parse_alpha),
            clip_floor=reader.get("--zimage-clip-floor", parse_score),
            lpips_close=reader.get("--zimage-lpips-close", parse_lpips, DEFAULTS.lpips_close),
            inconclusive=reader.get(
                "--zimage-inconclusive", parse_inconclusive, DEFAULTS.inconclusive
            ),
            per_prompt_gate=reader.flag("--zimage-per-prompt-gate"),
            xfail_strict=reader.xfail_strict(),
            device=reader.get("--zimage-device", parse_device, DEFAULTS.device),
            weights=reader.get("--zimage-weights", parse_weights, DEFAULTS.weights),
            precision=reader.get("--zimage-precision", parse_precision, DEFAULTS.precision),
            clip_model=reader.get("--zimage-clip-model", str, DEFAULT_CLIP_MODEL),
            clip_pretrained=reader.get("--zimage-clip-pretrained", str, DEFAULT_CLIP_PRETRAINED),
            lpips_net=reader.get("--zimage-lpips-net", parse_lpips_net, DEFAULTS.lpips_net),
            lpips_weights=reader.path("--zimage-lpips-weights"),
            report_dir=reader.path("--zimage-report-dir"),
            cache_dir=reader.path("--zimage-cache-dir"),
            refresh=reader.flag("--zimage-refresh"),
            revision=reader.get("--zimage-revision", str),
            timeout=reader.get("--zimage-timeout", parse_timeout, DEFAULTS.timeout),
            queue_depth=reader.get("--zimage-queue-depth", parse_depth, DEFAULTS.queue_depth),
            rootpath=config.rootpath,
        )

    def gate_for(self, suite: Suite) -> GateParameters:
        """This run's gate parameters for ``suite``: option > suite file > default."""
        values: dict[str, float] = {}
        sources: list[tuple[str, str]] = []
        for name in ("tolerance", "margin", "alpha", "clip_floor"):
            option, in_suite = getattr(self, name), getattr(suite, name)
            if option is not None:
                values[name], source = option, "option"
            elif in_suite is not None:
                values[name], source = in_suite, "suite file"
            else:
                values[name], source = getattr(DEFAULTS, name), "default"
            sources.append((name, source))
        return GateParameters(**values, sources=tuple(sources))

    def gate_for_defaults(self) -> GateParameters:
        """Gate parameters when the suite file is not at hand: options, else defaults."""
        values = {
            name: getattr(self, name)
            if getattr(self, name) is not None
            else getattr(DEFAULTS, name)
            for name in ("tolerance", "margin", "alpha", "clip_floor")
        }
        sources = tuple(
            (name, "option" if getattr(self, name) is not None else "default") for name in values
        )
        return GateParameters(**values, sources=sources)

    def seeds_for(self, suite: Suite) -> tuple[int, ...]:
        return self.seeds if self.seeds is not None else suite.seeds

    def cache_revision(self, suite: Suite) -> str:
        return self.revision if self.revision is not None else suite.revision


class _Reader:
    """Reads one option: command line, then ini; ini errors become UsageError."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.by_flag = {opt.flag: opt for opt in _OPTIONS}

    def _dest(self, flag: str) -> str:
        return flag.lstrip("-").replace("-", "_")

    def _ini(self, opt: _Option) -> Any:
        assert opt.ini is not None
        return self.config.getini(opt.ini)

    def _parse_ini(self, opt: _Option, text: str, parse: Callable[[str], T]) -> T:
        try:
            return parse(text)
        except argparse.ArgumentTypeError as exc:
            raise pytest.UsageError(f"ini option {opt.ini}: {exc}") from None

    def get(self, flag: str, parse: Callable[[str], Any], default: Any = None) -> Any:
        opt = self.by_flag[flag]
        value = self.config.getoption(self._dest(flag))
        if value is not None:
            return tuple(value) if opt.append else value
        raw = self._ini(opt) if opt.ini else None
        if opt.append:
            items = [self._parse_ini(opt, line, parse) for line in (raw or []) if line.strip()]
            return tuple(items) if items else default
        if raw:
            return self._parse_ini(opt, raw, parse)
        return default

    def flag(self, flag: str) -> bool:
        opt = self.by_flag[flag]
        if self.config.getoption(self._dest(flag)):
            return True
        raw = self._ini(opt) if opt.ini else ""
        return bool(raw) and self._parse_ini(opt, raw, parse_bool)

    def path(self, flag: str) -> Path | None:
        value = self.config.getoption(self._dest(flag))
        if value is not None:
            return Path(value).expanduser().absolute()
        opt = self.by_flag[flag]
        raw = self._ini(opt) if opt.ini else ""
        if raw:
            base = self.config.inipath.parent if self.config.inipath else self.config.rootpath
            return (base / Path(raw).expanduser()).absolute()
        return None

    def hosts(self) -> tuple[HostSpec, ...]:
        cli = self.config.getoption("zimage_host")
        if cli:
            return _dedupe(cli)
        env = os.environ.get("ZIMAGE_HOST", "").strip()
        if env:
            try:
                return _dedupe([parse_host(part) for part in re.split(r"[,\s]+", env) if part])
            except argparse.ArgumentTypeError as exc:
                raise pytest.UsageError(f"$ZIMAGE_HOST: {exc}") from None
        opt = self.by_flag["--zimage-host"]
        return _dedupe(
            [self._parse_ini(opt, line, parse_host) for line in self._ini(opt) if line.strip()]
        )

    def xfail_strict(self) -> bool:
        raw = self.config.getini("zimage_xfail_strict")
        if raw:
            try:
                return parse_bool(raw)
            except argparse.ArgumentTypeError as exc:
                raise pytest.UsageError(f"ini option zimage_xfail_strict: {exc}") from None
        return bool(self.config.getini("xfail_strict"))


def _dedupe(hosts: Sequence[HostSpec]) -> tuple[HostSpec, ...]:
    return tuple(dict.fromkeys(hosts))
