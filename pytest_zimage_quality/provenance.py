"""Provenance: what made a run's images, and the *lane* that decides which runs may be compared.

A run's CLIPScores can only be compared with another run's (a baseline, a cached reference
image) when the images were drawn by the same stack: the same GPU model, the same ComfyUI
(version, and commit where the server reports one), the same torch and CUDA build. That
tuple is the **lane** (the word comes from Comfy-Org's GPU regression CI, whose blessed
goldens are valid on their own lane only). Its id is a hash of those fields, the same in
every run on that stack. Python is recorded but is not part of the lane: it does not change
what a sampler draws. The model files are not part of the lane either: they are what a
model-swap PR changes, and they are recorded, and keyed by the image cache, on their own.

The lane is built on :mod:`hardware`'s ``HardwareProfile`` (one parse of ``/system_stats``),
so a lane is a hardware class minus python and the model files, plus the ComfyUI commit.

ComfyUI 0.18.1 does not report its commit in ``/system_stats``; when a server (or a proxy in
front of it) adds ``system.comfyui_commit``, it is recorded and becomes part of the lane.

Pure: mappings in, frozen values and JSON-ready dicts out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .hardware import HardwareProfile

__all__ = [
    "COMMIT_KEYS",
    "Lane",
    "ModelFile",
    "Provenance",
    "ScorerFingerprint",
    "SuiteFingerprint",
    "build_provenance",
    "lanes_compatible",
    "lanes_from_summary",
    "run_lanes_compatible",
    "server_commit",
]

#: Keys of ``/system_stats``'s ``system`` object that may carry the ComfyUI commit.
COMMIT_KEYS = ("comfyui_commit", "git_commit", "commit")

_FIELD_NAMES = {
    "gpu": "GPU",
    "comfyui_version": "ComfyUI version",
    "comfyui_commit": "ComfyUI commit",
    "pytorch_version": "torch",
    "cuda_version": "CUDA",
}
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Lane:
    """The fields that make two runs' images comparable."""

    gpu: str
    comfyui_version: str
    comfyui_commit: str  # "" when the server does not report one
    pytorch_version: str
    cuda_version: str  # "" when torch has no accelerator build (CPU)

    @classmethod
    def from_profile(cls, profile: HardwareProfile, *, commit: str = "") -> Lane:
        return cls(
            gpu=profile.gpu,
            comfyui_version=profile.comfyui_version,
            comfyui_commit=commit,
            pytorch_version=profile.pytorch_version,
            cuda_version=profile.cuda_version,
        )

    @classmethod
    def from_system_stats(cls, stats: Mapping[str, Any]) -> Lane:
        """From a ``GET /system_stats`` body, as the server sent it."""
        return cls.from_profile(
            HardwareProfile.from_system_stats("", stats), commit=server_commit(stats)
        )

    @classmethod
    def from_server_record(cls, server: Mapping[str, Any]) -> Lane:
        """From a server as summary.json's ``environment.servers`` records it (the
        ``/system_stats`` fields flattened, ``devices``, and ``gpu_name``)."""
        devices = [d for d in server.get("devices") or () if isinstance(d, Mapping)]
        if not devices and server.get("gpu_name"):
            devices = [{"name": str(server["gpu_name"])}]
        return cls.from_system_stats({"system": server, "devices": devices})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Lane:
        """From :meth:`to_dict`'s output (a stored summary.json); missing fields read as ""."""
        return cls(**{name: str(data.get(name) or "") for name in _FIELD_NAMES})

    @property
    def fields(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @property
    def id(self) -> str:
        """Stable: ``lane-`` and 12 hex digits of the sha256 of the fields."""
        text = json.dumps(self.fields, sort_keys=True)
        return "lane-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        comfy = f"ComfyUI {self.comfyui_version}"
        if self.comfyui_commit:
            comfy += f" ({self.comfyui_commit[:10]})"
        build = f"CUDA {self.cuda_version}" if self.cuda_version else "no CUDA"
        return f"{self.gpu} · {comfy} · torch {self.pytorch_version} · {build}"

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "label": self.label, **self.fields}


def server_commit(stats: Mapping[str, Any]) -> str:
    """The ComfyUI commit a ``/system_stats`` body reports, or "" (0.18.1 reports none)."""
    system = stats.get("system")
    if not isinstance(system, Mapping):
        return ""
    for key in COMMIT_KEYS:
        value = system.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def lanes_compatible(a: Lane, b: Lane) -> tuple[bool, tuple[str, ...]]:
    """Whether images of lane ``a`` (the baseline's) and ``b`` (this run's) may be compared,
    and, when not, one reason per field that differs. Compatible exactly when the ids match."""
    reasons = tuple(
        f"{title}: {getattr(a, name) or 'unknown'} (baseline) ≠ {getattr(b, name) or 'unknown'} "
        "(this run)"
        for name, title in _FIELD_NAMES.items()
        if getattr(a, name) != getattr(b, name)
    )
    return not reasons, reasons


def run_lanes_compatible(
    baseline: Sequence[Lane], current: Sequence[Lane]
) -> tuple[bool, tuple[str, ...]]:
    """Two runs are comparable when they ran on the same set of lanes (a pool may span
    several). One lane each: the differing fields; otherwise the lanes only one side has."""
    then = {lane.id: lane for lane in baseline}
    now = {lane.id: lane for lane in current}
    if not then or not now:
        missing = "the baseline" if not then else "this run"
        return False, (f"{missing} records no server (no lane to compare)",)
    if then.keys() == now.keys():
        return True, ()
    if len(then) == 1 and len(now) == 1:
        return lanes_compatible(next(iter(then.values())), next(iter(now.values())))
    reasons = [f"only in the baseline: {then[i].label}" for i in sorted(then.keys() - now.keys())]
    reasons += [f"only in this run: {now[i].label}" for i in sorted(now.keys() - then.keys())]
    return False, tuple(reasons)


@dataclass(frozen=True)
class ModelFile:
    """A model file a run's graphs load, with the identity its server exposes for it."""

    name: str  # "folder/file"
    identity: str  # canonical JSON of the server's answer ("null": the server exposes none)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "identity": json.loads(self.identity)}


@dataclass(frozen=True)
class SuiteFingerprint:
    """A suite file and the workflow it patches, by content."""

    name: str
    sha256: str  # the suite file and its workflow graph together (``Suite.sha256``)
    workflow_sha256: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "sha256": self.sha256, "workflow_sha256": self.workflow_sha256}


@dataclass(frozen=True)
class ScorerFingerprint:
    """A scorer's model and weights; ``weights_sha256`` is None for random weights."""

    role: str  # "clip", "lpips", ...
    model: str
    pretrained: str
    weights_sha256: str | None
    random_weights: bool

    @classmethod
    def from_identity(cls, role: str, identity: Mapping[str, Any]) -> ScorerFingerprint:
        """From the scorer identity the session records (``scorer.info()``)."""
        weights = str(identity.get("weights_identity") or "")
        return cls(
            role=role,
            model=str(identity.get("model") or identity.get("net") or ""),
            pretrained=str(identity.get("pretrained") or ""),
            weights_sha256=weights if _HEX64.fullmatch(weights) else None,
            random_weights=bool(identity.get("random_weights")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "model": self.model,
            "pretrained": self.pretrained,
            "weights_sha256": self.weights_sha256,
            "random_weights": self.random_weights,
        }


@dataclass(frozen=True)
class Provenance:
    """Everything summary.json records about what produced and judged the images."""

    #: (server url without credentials, its lane, its python), in pool order
    servers: tuple[tuple[str, Lane, str], ...]
    model_files: tuple[ModelFile, ...] = ()
    suites: tuple[SuiteFingerprint, ...] = ()
    scorers: tuple[ScorerFingerprint, ...] = ()
    plugin_version: str = ""
    runner_python: str = ""
    #: the lanes of the servers, once each, in order of first server
    lanes: tuple[Lane, ...] = field(init=False)

    def __post_init__(self) -> None:
        seen: dict[str, Lane] = {}
        for _, lane, _ in self.servers:
            seen.setdefault(lane.id, lane)
        object.__setattr__(self, "lanes", tuple(seen.values()))

    @property
    def lane(self) -> str:
        """The run's lane id: its one lane's id; for a pool spanning several, a hash of their
        sorted ids (``lanes-...``); "" when no server was reached."""
        ids = sorted(lane.id for lane in self.lanes)
        if len(ids) <= 1:
            return ids[0] if ids else ""
        return "lanes-" + hashlib.sha256(",".join(ids).encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {
            "lane": self.lane,
            "lanes": [lane.to_dict() for lane in self.lanes],
            "servers": [
                {"url": url, "lane": lane.id, "python_version": python}
                for url, lane, python in self.servers
            ],
            "model_files": [m.to_dict() for m in self.model_files],
            "suites": [s.to_dict() for s in self.suites],
            "scorers": [s.to_dict() for s in self.scorers],
            "plugin_version": self.plugin_version,
            "runner_python": self.runner_python,
        }


def build_provenance(
    servers: Iterable[tuple[HardwareProfile, str]],
    *,
    suites: Iterable[SuiteFingerprint] = (),
    scorers: Mapping[str, Mapping[str, Any]] | None = None,
    plugin_version: str = "",
    runner_python: str = "",
) -> Provenance:
    """From each server's profile (``HardwareProfile.from_system_stats``, with the model files'
    identities) and commit (:func:`server_commit`), the suites' fingerprints and the
    session's scorer identities (``{"clip": {...}, "lpips": {...}}``)."""
    rows = []
    models: set[tuple[str, str]] = set()
    for profile, commit in servers:
        rows.append(
            (profile.url, Lane.from_profile(profile, commit=commit), profile.python_version)
        )
        models.update(profile.models)
    return Provenance(
        servers=tuple(rows),
        model_files=tuple(ModelFile(name, identity) for name, identity in sorted(models)),
        suites=tuple(suites),
        scorers=tuple(
            ScorerFingerprint.from_identity(role, identity)
            for role, identity in (scorers or {}).items()
        ),
        plugin_version=plugin_version,
        runner_python=runner_python,
    )


def lanes_from_summary(summary: Mapping[str, Any]) -> list[Lane]:
    """The lanes of a stored run: its ``provenance.lanes``, or, for a summary.json written
    before provenance was recorded, rebuilt from ``environment.servers`` (which kept the
    ``/system_stats`` fields the lane needs; such a run has no commit)."""
    provenance = summary.get("provenance")
    if isinstance(provenance, Mapping) and isinstance(provenance.get("lanes"), list):
        return [Lane.from_dict(lane) for lane in provenance["lanes"] if isinstance(lane, Mapping)]
    environment = summary.get("environment")
    servers = environment.get("servers") if isinstance(environment, Mapping) else None
    lanes: dict[str, Lane] = {}
    for server in servers if isinstance(servers, list) else []:
        if isinstance(server, Mapping):
            lane = Lane.from_server_record(server)
            lanes.setdefault(lane.id, lane)
    return list(lanes.values())
