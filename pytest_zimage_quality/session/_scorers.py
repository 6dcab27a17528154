"""The run's scorers, from pytest's side: the hooks that build the CLIP and LPIPS scorers
(a conftest may supply its own), the metrics registered by hooks and entry points, and the
weights check that refuses a run before any generation.

The models themselves live in ``scorers/``; this module only asks the hooks and checks what
they return.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from ..errors import ScorerError
from ..metrics import ScorerSpec, ScorerSpecError, check_specs
from ..suite import Suite

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["check_gate_metric_names", "check_scorer_weights", "gather_metric_specs", "make_scorers"]


def check_scorer_weights(config: pytest.Config, settings: Settings) -> None:
    """Refuse the run before any generation when the default scorers' weights are missing."""
    if settings.random_weights:
        return
    hooks = config.pluginmanager.hook
    ours = config.pluginmanager.get_plugin("zimage_quality")
    for hook in (hooks.pytest_zimage_make_clip_scorer, hooks.pytest_zimage_make_lpips_scorer):
        if any(impl.plugin is not ours for impl in hook.get_hookimpls()):
            return  # a conftest supplies its own scorers: their weights are its business
    from ..scorers import resolve_clip_weights, resolve_lpips_weights  # noqa: PLC0415

    resolve_clip_weights(settings.clip_model, settings.clip_pretrained)
    resolve_lpips_weights(settings.lpips_net, settings.lpips_weights)


def check_gate_metric_names(
    config: pytest.Config, settings: Settings, suites: Sequence[Suite]
) -> str | None:
    """Why a gate metric named by ``--zimage-gate-metric``, a suite's ``gate_metric`` or a
    ``[gate.metrics.<name>]`` table cannot gate this run, before any generation (None: every
    name may). Names a conftest hook or an entry point could register are checked again once
    the scorers are built (summary.build.gate_metric_problem)."""
    from importlib.metadata import entry_points  # noqa: PLC0415 - only for zimage runs

    from ..metric_gates import gate_metric_usage_problem  # noqa: PLC0415
    from ..metrics import ENTRY_POINT_GROUP  # noqa: PLC0415
    from ..scorers._builtin import builtin_metric_kinds  # noqa: PLC0415 - no model built

    builtins = builtin_metric_kinds(suites)
    others = bool(
        config.hook.pytest_zimage_register_scorers.get_hookimpls()
        or entry_points(group=ENTRY_POINT_GROUP)
    )
    names = [(settings.gate_metric, "--zimage-gate-metric")] if settings.gate_metric else []
    for suite in suites:
        if settings.gate_metric is None:
            names.append((suite.gate_metric, f"suite {suite.name}: [suite] gate_metric"))
        names += [
            (g.metric, f"suite {suite.name}: [gate.metrics.{g.metric}]") for g in suite.metric_gates
        ]
    for name, what in names:
        problem = gate_metric_usage_problem(name, builtins, others_registered=others, what=what)
        if problem is not None:
            return problem
    return None


def make_scorers(config: pytest.Config, settings: Settings) -> tuple[Any, Any]:
    """The run's CLIP and LPIPS scorers (hooks may supply their own)."""
    hook = config.hook
    clip = hook.pytest_zimage_make_clip_scorer(config=config, settings=settings)
    lpips = hook.pytest_zimage_make_lpips_scorer(config=config, settings=settings)
    return clip, lpips


def gather_metric_specs(
    config: pytest.Config,
    settings: Settings,
    scorers: tuple[Any, Any],
    suites: Sequence[Suite],
) -> list[ScorerSpec]:
    """Every metric of the run: the built-ins (on the CLIP and LPIPS ``scorers`` the
    fixtures share), then ``pytest_zimage_register_scorers`` hooks, then installed
    packages' entry points. Names must be unique."""
    from ..scorers import (  # noqa: PLC0415 - torch etc. only when scoring
        builtin_specs,
        entry_point_scorers,
        flatten_specs,
    )

    clip, lpips = scorers
    suites = list(suites)
    found: list[tuple[ScorerSpec, str]] = [
        (spec, "built-in") for spec in builtin_specs(clip, lpips, suites=suites)
    ]
    for result in config.hook.pytest_zimage_register_scorers(
        config=config, settings=settings, suites=suites
    ):
        where = "a pytest_zimage_register_scorers hook"
        found.extend((spec, where) for spec in flatten_specs(result, where))
    found.extend(entry_point_scorers(settings))
    try:
        return check_specs([spec for spec, _ in found], origin={id(s): w for s, w in found})
    except ScorerSpecError as exc:
        raise ScorerError(str(exc), hint="docs/scorers.md: registering a scorer") from None
