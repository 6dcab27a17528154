"""Scorers of installed packages: the ``pytest_zimage_quality.scorers`` entry-point group.

A package declares, in its pyproject.toml::

    [project.entry-points."pytest_zimage_quality.scorers"]
    brightness = "zimage_brightness:make_scorer"

and the object named there is a :class:`~pytest_zimage_quality.metrics.ScorerSpec`, a list of
them, or a factory ``make_scorer(settings)`` that returns one or a list (it may build a model
on the run's ``settings.device``). Each spec is returned with where it came from, for
messages. A package that fails to load or returns something else is one clear
:class:`~pytest_zimage_quality.ScorerError` naming the entry point and its distribution.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ..errors import ScorerError
from ..metrics import ENTRY_POINT_GROUP, ScorerSpec

__all__ = ["entry_point_scorers", "flatten_specs"]


def _where(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = f"{dist.name} {dist.version}" if dist is not None else "an installed package"
    return f"entry point {ep.name!r} = {ep.value!r} of {name}"


def flatten_specs(result: object, where: str) -> list[ScorerSpec]:
    """One spec, a list of specs or None, as a list; anything else is a ScorerError."""
    if result is None:
        return []
    if isinstance(result, ScorerSpec):
        return [result]
    if (
        isinstance(result, Sequence)
        and not isinstance(result, str | bytes)
        and all(isinstance(spec, ScorerSpec) for spec in result)
    ):
        return list(result)
    raise ScorerError(
        f"{where} gave {type(result).__name__}, not a ScorerSpec or a list of them",
        hint="return pytest_zimage_quality.ScorerSpec(...) objects (docs/scorers.md)",
    )


def entry_point_scorers(settings: Any) -> list[tuple[ScorerSpec, str]]:
    """The specs every installed package registers, in entry-point name order."""
    found: list[tuple[ScorerSpec, str]] = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        where = _where(ep)
        try:
            target = ep.load()
            result = target(settings) if callable(target) else target
        except ScorerError:
            raise
        except Exception as exc:
            raise ScorerError(
                f"the scorer {where} failed to load: {type(exc).__name__}: {exc}",
                hint="fix or uninstall that package; the plugin runs no metric half-loaded",
            ) from exc
        found.extend((spec, where) for spec in flatten_specs(result, where))
    return found
