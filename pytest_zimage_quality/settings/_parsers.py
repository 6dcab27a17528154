"""The parsers of option values: each turns the text of a flag, ini key or environment
variable into a value, or raises ``argparse.ArgumentTypeError`` with a one-line reason (argparse
prints it as one usage line). ``Bounds`` doubles as the range a suite file's value of the same
parameter is checked against."""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..hosts import HostAddress as HostSpec
from ..hosts import HostAddressError
from ..hosts import parse_host as parse_host_address
from ..redaction import HeaderValueError, check_header

N = TypeVar("N", int, float)

#: KSampler's largest seed (0xffffffffffffffff).
MAX_SEED = 2**64 - 1


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
    try:
        check_header(name, value.strip())  # CR/LF/controls/non-Latin-1, value never echoed
    except HeaderValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, value.strip()


@dataclass(frozen=True)
class Bounds(Generic[N]):
    """A number in the closed range [low, high]: parses option text, and is the range the
    suite file's value of the same parameter is checked against."""

    convert: Callable[[str], N]
    low: N
    high: N
    what: str

    def __call__(self, text: str) -> N:
        try:
            value = self.convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {self.what}") from None
        if not self.low <= value <= self.high:
            raise argparse.ArgumentTypeError(f"{text!r} is out of range [{self.low}, {self.high}]")
        return value


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of lower-case words."""

    choices: tuple[str, ...]

    def __call__(self, text: str) -> str:
        value = text.strip().lower()
        if value not in self.choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of: {', '.join(self.choices)}")
        return value


parse_tolerance = Bounds(float, 0.0, 2.0, "CLIPScore difference")
parse_margin = Bounds(float, 0.0, 2.0, "CLIPScore difference")
parse_alpha = Bounds(float, 1e-9, 0.5, "significance level in (0, 0.5]")
parse_clip_floor = Bounds(float, -1.0, 1.0, "cosine similarity in [-1, 1]")
parse_lpips_close = Bounds(float, 0.0, 10.0, "LPIPS distance")
parse_timeout = Bounds(float, 0.001, 7 * 24 * 3600.0, "number of seconds")
parse_queue_depth = Bounds(int, 1, 1024, "whole number of queued prompts")
parse_vram_interval = Bounds(float, 0.0, 3600.0, "number of seconds")
parse_recheck = Bounds(int, 0, 1_000_000, "whole number of reference cases")
parse_score_memory = Bounds(int, 16, 1_048_576, "whole number of MiB")

parse_cpu_servers = Bounds(int, 0, 256, "whole number of servers")
parse_ray_servers = Bounds(int, 1, 4096, "whole number of servers")
parse_pin_pairs = Choice(("auto", "always", "never"))
parse_weights = Choice(("pretrained", "random"))
parse_lpips_net = Choice(("alex", "vgg"))
parse_band = Choice(("scaled", "fixed"))
parse_band_sd = Bounds(float, 0.0, 1.0, "CLIPScore standard deviation")
parse_precision = Choice(("fp32", "tf32", "bf16"))


def parse_keys(text: str) -> tuple[str, ...]:
    """A comma- or space-separated list of keys."""
    keys = tuple(k for k in re.split(r"[,\s]+", text.strip()) if k)
    if not keys:
        raise argparse.ArgumentTypeError("expected at least one key, comma-separated")
    return keys


def parse_seeds(text: str) -> tuple[int, ...]:
    seeds: list[int] = []
    for part in parse_keys(text):
        if not part.isdigit() or int(part) > MAX_SEED:
            raise argparse.ArgumentTypeError(f"seed {part!r} is not a whole number in [0, 2**64-1]")
        if int(part) not in seeds:
            seeds.append(int(part))
    return tuple(seeds)


#: A metric's name: what the suite's ``gate_metric`` and ``--zimage-gate-metric`` accept.
METRIC_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")


def parse_metric_name(text: str) -> str:
    """A metric's name (its spelling only: which metrics a run has is known once its scorers
    are registered, and the run checks the name then)."""
    value = text.strip()
    if not METRIC_NAME_RE.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a metric name (lower-case letters, digits and '_', e.g. "
            "clipscore, text_accuracy or a registered scorer's name)"
        )
    return value


def parse_comfyui(text: str) -> str:
    """A ComfyUI installation (checked when the servers start) or ``fake``."""
    value = text.strip()
    if not value:
        raise argparse.ArgumentTypeError("expected the path of ComfyUI's main.py, or 'fake'")
    return value


def parse_gpus(text: str) -> tuple[str, ...]:
    """``all`` (every visible GPU: an empty tuple), ``none`` (CPU servers only) or
    comma-separated indices or UUIDs."""
    if text.strip().lower() in ("all", "none"):
        return () if text.strip().lower() == "all" else ("none",)
    ids = parse_keys(text)
    for gpu in ids:
        if not re.fullmatch(r"\d+|(GPU|MIG)-[0-9A-Za-z/-]+", gpu):
            raise argparse.ArgumentTypeError(f"{gpu!r} is not a GPU index or UUID")
    return ids


def parse_arguments(text: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def parse_device(text: str) -> str:
    value = text.strip().lower()
    if value in ("auto", "cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", value):
        return value
    raise argparse.ArgumentTypeError(f"{text!r} is not a device (auto, cpu, cuda, cuda:N or mps)")


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")
