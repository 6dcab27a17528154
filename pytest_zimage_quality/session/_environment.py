"""Where a run happened, gathered for summary.json: the servers and their GPUs, model files,
scorer identities, versions, each config's peak VRAM and the determinism check's pairs.

The session keeps this as one plain dict (``ZImageSession.environment``) because xdist
workers send theirs to the controller through ``workeroutput``; ``environment_summary`` turns
it into the summary's typed ``Environment``.
"""

from __future__ import annotations

import dataclasses
import functools
import platform
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .. import __version__
from ..metrics import ScorerSpec
from ..summary.model import Environment, ServerSummary

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = [
    "capture_environment",
    "environment_summary",
    "merge_environment",
    "scorer_identity",
    "start_vram_sampling",
]


def start_vram_sampling(engine: Engine, *, interval: float, multi_suite: bool) -> list[Any]:
    """Sample each server's VRAM while it generates, attributed to the config it runs
    (``--zimage-vram-interval``; docs/ci.md: VRAM beside speed). Returns the started
    samplers (none when ``interval`` is 0)."""
    if interval <= 0:
        return []
    from ..summary.verdicts import config_name  # noqa: PLC0415 - not needed at plugin load
    from ..vram import VramSampler  # noqa: PLC0415

    def running(runner: Any) -> str | None:
        case = runner.running_case()
        return (
            None
            if case is None
            else config_name(case.suite, case.config.key, multi_suite=multi_suite)
        )

    samplers: list[Any] = []
    for runner in engine.runners:
        stats = getattr(runner.client, "system_stats", None)
        if callable(stats):
            sampler = VramSampler(
                stats, current_config=functools.partial(running, runner), interval=interval
            )
            sampler.start()
            samplers.append(sampler)
    return samplers


def capture_environment(
    environment: dict[str, Any],
    *,
    samplers: Iterable[Any],
    engine: Engine | None,
    specs: list[ScorerSpec] | None,
    scorers: tuple[Any, Any] | None,
    simulated: bool,
) -> None:
    """Stop the VRAM ``samplers`` and fill ``environment`` from the run's engine and scorers
    (rechecked pairs are scored here, with the run's ``specs``)."""
    samplers = list(samplers)
    if samplers:
        from ..vram import merge_peaks  # noqa: PLC0415

        for sampler in samplers:
            sampler.stop()
        peaks = merge_peaks(sampler.peaks() for sampler in samplers)
        environment["vram_peaks"] = {k: v.to_dict() for k, v in peaks.items()}
    if engine is not None and engine.regenerated:
        from ..recheck import score_pairs  # noqa: PLC0415 - torch only when rechecking

        pairs = score_pairs(engine.regenerated, specs or [])
        environment["recheck_pairs"] = [dataclasses.asdict(p) for p in pairs]
    if engine is not None:
        servers = [dataclasses.asdict(info) for info in engine.server_infos]
        for server, info in zip(servers, engine.server_infos, strict=True):
            server["gpu_name"] = info.gpu_name
            server["simulated"] = simulated
        environment["servers"] = servers
        environment["model_files"] = engine.model_identities()
        environment["system_stats"] = engine.system_stats
        environment["regenerated_other_lane"] = engine.regenerated_other_lane
    if scorers is not None:
        environment["scorers"] = {
            name: scorer_identity(scorer)
            for name, scorer in zip(("clip", "lpips"), scorers, strict=True)
        }


def merge_environment(environment: dict[str, Any], other: Mapping[str, Any]) -> None:
    """Fold a worker's environment into the controller's (first server list wins)."""
    for key, value in other.items():
        if value and not environment.get(key):
            environment[key] = value


def environment_summary(environment: Mapping[str, Any], *, device: str) -> Environment:
    """Where this run happened, as plain data for the summary (servers, scorers, versions)."""
    torch = sys.modules.get("torch")
    return Environment(
        plugin_version=__version__,
        python=platform.python_version(),
        platform=platform.platform(),
        pytest=pytest.__version__,
        torch=getattr(torch, "__version__", None),
        device=device,
        servers=tuple(ServerSummary.from_dict(s) for s in environment.get("servers", [])),
        scorers=environment.get("scorers", {}),
    )


def scorer_identity(scorer: Any) -> dict[str, Any]:
    """What identifies a scorer's numbers; user-supplied scorers may lack some attributes."""
    info = getattr(scorer, "info", None)
    if callable(info):
        data = info()
        if isinstance(data, dict):
            return {**data, "class": type(scorer).__qualname__}
    fields = ("name", "model", "pretrained", "net", "weights_identity", "random_weights")
    identity = {
        name: getattr(scorer, name)
        for name in fields
        if isinstance(getattr(scorer, name, None), str | bool)
    }
    identity["device"] = str(getattr(scorer, "device", ""))
    identity["class"] = type(scorer).__qualname__
    return identity
