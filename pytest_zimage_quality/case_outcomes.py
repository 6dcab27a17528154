"""Where each test waits for its case: one slot per case, filled once by the pipeline.

The runner and scoring threads resolve a slot with the case's :class:`CaseOutcome` or fail
it with a :class:`~pytest_zimage_quality.ZImageError`; the test's thread waits on it, polling
for progress text while it waits. A stop fails every slot still empty, so no test waits past
the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ZImageError

if TYPE_CHECKING:
    from .comfyui import GeneratedImage
    from .scheduler import ImageRequest
    from .scoring_worker import Scores
    from .suite import Case

__all__ = ["CaseOutcome", "CaseSlots"]

Key = tuple[str, str]


@dataclass(frozen=True)
class CaseOutcome:
    """A scored case: its image, where it is stored, its scores, and its reference's outcome.

    The PNG bytes live in the report directory, not in memory: a run holds one outcome per
    case until it ends, so ``png`` reads the stored file, and ``generated`` carries the
    image's facts (sha256, host, timings) with its ``png`` emptied.
    """

    case: Case
    job: ImageRequest = field(repr=False)
    generated: GeneratedImage = field(repr=False)
    image_path: Path
    scores: Scores
    reference: CaseOutcome | None = None

    @property
    def png(self) -> bytes:
        return self.image_path.read_bytes()


class _Slot:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.outcome: CaseOutcome | None = None
        self.error: ZImageError | None = None


class CaseSlots:
    """One slot per case key the run was asked for."""

    def __init__(self) -> None:
        self._slots: dict[Key, _Slot] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def add(self, key: Key) -> None:
        self._slots.setdefault(key, _Slot())

    def resolve(self, key: Key, outcome: CaseOutcome) -> None:
        slot = self._slots[key]
        slot.outcome = outcome
        slot.event.set()

    def fail(self, key: Key, error: ZImageError) -> None:
        slot = self._slots[key]
        slot.error = error
        slot.event.set()

    def outcome_of(self, key: Key) -> CaseOutcome | None:
        """The case's outcome if it has one (a candidate's reference)."""
        slot = self._slots.get(key)
        return None if slot is None else slot.outcome

    def fail_waiting(self, error: ZImageError) -> None:
        """Fail every slot not filled yet (the run stops)."""
        for slot in self._slots.values():
            if not slot.event.is_set():
                slot.error = error
                slot.event.set()

    def wait(self, key: Key, *, poll: Callable[[], None] | None = None) -> CaseOutcome:
        """Block until the case is resolved (``poll`` every half second meanwhile); raise its
        error if it failed."""
        slot = self._slots[key]
        while not slot.event.wait(0.5):
            if poll is not None:
                poll()
        if slot.error is not None:
            raise slot.error
        assert slot.outcome is not None
        return slot.outcome
