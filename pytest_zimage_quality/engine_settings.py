"""What the engine reads of a run's settings: a view the pytest layer's ``Settings`` satisfies.

The engine is pipeline, not pytest layer: it takes this protocol rather than importing the
option registration that builds the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .generation import GenerationSettings
from .servers import LaunchSettings

__all__ = ["EngineSettings"]


class _Host(Protocol):
    @property
    def url(self) -> str: ...


class EngineSettings(LaunchSettings, GenerationSettings, Protocol):
    """The part of the run's settings the engine reads (the pytest layer's ``Settings`` has it).

    The engine is pipeline, not pytest layer: it takes this view rather than importing the
    option registration that builds it.
    """

    @property
    def hosts(self) -> Sequence[_Host]: ...
    @property
    def headers(self) -> Sequence[tuple[str, str]]: ...
    @property
    def simulated(self) -> bool: ...
