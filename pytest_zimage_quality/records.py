"""The per-case record: what one finished case measured, as plain values.

A record travels inside the test report as ``user_properties`` (plain floats and strings),
so it survives pytest-xdist's report serialisation and lands in JUnit XML; the controller
rebuilds it from the report, appends it to ``results.jsonl`` and aggregates the gate from it.

Every metric of the run (built-in or registered, docs/scorers.md) is one entry of
``metrics`` (and, for a candidate's reference-free metrics, ``reference_metrics``: the value
of its reference image, which the gate pairs it with); ``details`` holds a metric's text about
the image (what OCR read). As properties they are ``zimage_metric_<name>``,
``zimage_reference_metric_<name>`` and ``zimage_detail_<name>``. In JSON an infinite value
(PSNR of identical images) is the string ``"inf"``; NaN is never stored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DETAIL_PREFIX",
    "METRIC_PREFIX",
    "PROPERTY_PREFIX",
    "REFERENCE_METRIC_PREFIX",
    "CaseRecord",
]

#: Every user property the plugin writes starts with this prefix.
PROPERTY_PREFIX = "zimage_"
#: ``zimage_metric_<name>``: one metric's value for the case's image.
METRIC_PREFIX = PROPERTY_PREFIX + "metric_"
#: ``zimage_reference_metric_<name>``: that metric's value for the reference image.
REFERENCE_METRIC_PREFIX = PROPERTY_PREFIX + "reference_metric_"
#: ``zimage_detail_<name>``: what that metric says about the image (OCR's reading).
DETAIL_PREFIX = PROPERTY_PREFIX + "detail_"
_MAPS = {
    "metrics": METRIC_PREFIX,
    "reference_metrics": REFERENCE_METRIC_PREFIX,
    "details": DETAIL_PREFIX,
}


def _json_number(value: float) -> float | str:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def _number(value: object) -> float | None:
    """A metric value read back from JSON or a property (``"inf"`` included), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return None if math.isnan(number) else number


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
    metrics: Mapping[str, float] = field(default_factory=dict, hash=False)
    reference_metrics: Mapping[str, float] = field(default_factory=dict, hash=False)
    details: Mapping[str, str] = field(default_factory=dict, hash=False)

    def metric(self, name: str) -> float | None:
        return self.metrics.get(name)

    def reference_metric(self, name: str) -> float | None:
        return self.reference_metrics.get(name)

    @property
    def is_reference(self) -> bool:
        return self.role == "reference"

    @property
    def key(self) -> tuple[str, str]:
        return (self.suite, self.case_id)

    def with_(self, **changes: Any) -> CaseRecord:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (infinite metric values as ``"inf"`` / ``"-inf"``)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["metrics"] = {k: _json_number(v) for k, v in self.metrics.items()}
        data["reference_metrics"] = {k: _json_number(v) for k, v in self.reference_metrics.items()}
        data["details"] = dict(self.details)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CaseRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("metrics", "reference_metrics"):
            raw = values.get(name) or {}
            values[name] = {
                str(k): n for k, v in dict(raw).items() if (n := _number(v)) is not None
            }
        values["details"] = {str(k): str(v) for k, v in dict(values.get("details") or {}).items()}
        return cls(**values)

    def to_properties(self) -> list[tuple[str, object]]:
        """``user_properties`` entries: primitives only, None fields left out; each metric,
        reference metric and detail is its own ``zimage_metric_<name>`` ... entry."""
        props: list[tuple[str, object]] = [
            (PROPERTY_PREFIX + f.name, getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in _MAPS and f.name != "outcome" and getattr(self, f.name) is not None
        ]
        for name, prefix in _MAPS.items():
            props.extend((prefix + key, value) for key, value in getattr(self, name).items())
        return props

    @classmethod
    def from_properties(cls, properties: Iterable[tuple[str, object]]) -> CaseRecord | None:
        """Rebuild a record from a report's ``user_properties``; None if it holds none."""
        data: dict[str, Any] = {name: {} for name in _MAPS}
        for name, value in properties:
            if not isinstance(name, str) or not name.startswith(PROPERTY_PREFIX):
                continue
            for field_name, prefix in _MAPS.items():
                if name.startswith(prefix):
                    data[field_name][name[len(prefix) :]] = value
                    break
            else:
                data[name[len(PROPERTY_PREFIX) :]] = value
        if "case_id" not in data:
            return None
        try:
            return cls.from_dict(data)
        except TypeError:
            return None
