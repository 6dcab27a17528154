"""The per-case record: what one finished case measured, as plain values.

A record travels inside the test report as ``user_properties`` (plain floats and strings),
so it survives pytest-xdist's report serialisation and lands in JUnit XML; the controller
rebuilds it from the report, appends it to ``results.jsonl`` and aggregates the gate from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PROPERTY_PREFIX", "CaseRecord"]

#: Every user property the plugin writes starts with this prefix.
PROPERTY_PREFIX = "zimage_"


@dataclass(frozen=True)
class CaseRecord:
    """One case's measurement. Scores are None when the case did not get that far."""

    suite: str
    case_id: str
    prompt: str
    prompt_text: str
    config: str
    config_label: str
    seed: int
    reference: str
    role: str  # "reference" | "candidate"
    clipscore: float | None = None
    reference_clipscore: float | None = None
    delta: float | None = None
    lpips: float | None = None
    tolerance: float | None = None
    clip_floor: float | None = None
    image_path: str = ""
    reference_image_path: str = ""
    image_sha256: str = ""
    width: int | None = None
    height: int | None = None
    wall_seconds: float | None = None
    server_seconds: float | None = None
    cached: str = ""  # "" (generated now) | "server" | "plugin" (content cache)
    host: str = ""
    prompt_id: str = ""
    graph_hash: str = ""
    expected_fail: str = ""  # the declared reason, "" when none
    check: str = ""  # what the per-case check concluded ("pass", "fail", "error")
    message: str = ""  # failure or error message
    outcome: str = ""  # pytest outcome, filled by the controller from the report
    run_id: str = ""
    suite_path: str = ""
    simulated: bool = False
    random_weights: bool = False

    @property
    def is_reference(self) -> bool:
        return self.role == "reference"

    @property
    def key(self) -> tuple[str, str]:
        return (self.suite, self.case_id)

    def with_(self, **changes: Any) -> CaseRecord:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_properties(self) -> list[tuple[str, object]]:
        """``user_properties`` entries: primitives only, None fields left out."""
        return [
            (PROPERTY_PREFIX + name, value)
            for name, value in self.to_dict().items()
            if value is not None and name not in ("outcome",)
        ]

    @classmethod
    def from_properties(cls, properties: Iterable[tuple[str, object]]) -> CaseRecord | None:
        """Rebuild a record from a report's ``user_properties``; None if it holds none."""
        data: dict[str, Any] = {}
        for name, value in properties:
            if isinstance(name, str) and name.startswith(PROPERTY_PREFIX):
                data[name[len(PROPERTY_PREFIX) :]] = value
        if "case_id" not in data:
            return None
        try:
            return cls.from_dict(data)
        except TypeError:
            return None
