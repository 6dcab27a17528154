"""Where a run happened: the servers as they described themselves, versions, scorers.

Part of the run summary's types (:mod:`.model` re-exports them); split out because it is
the one part the pytest layer fills from the engine and the scorers rather than from records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Environment", "ServerSummary"]


@dataclass(frozen=True)
class ServerSummary:
    """What a ComfyUI host said about itself (``/system_stats``), as the run recorded it."""

    url: str
    comfyui_version: str = ""
    python_version: str = ""
    pytorch_version: str = ""
    os: str = ""
    gpu_name: str = ""
    simulated: bool = False
    devices: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # any further fields, kept as given

    _FIELDS = ("url", "comfyui_version", "python_version", "pytorch_version", "os", "gpu_name")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerSummary:
        known = {name: str(data.get(name) or "") for name in cls._FIELDS}
        devices = tuple(d for d in data.get("devices") or () if isinstance(d, Mapping))
        extra = {
            key: value
            for key, value in data.items()
            if key not in (*cls._FIELDS, "devices", "simulated")
        }
        return cls(**known, simulated=bool(data.get("simulated")), devices=devices, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "comfyui_version": self.comfyui_version,
            "python_version": self.python_version,
            "pytorch_version": self.pytorch_version,
            "os": self.os,
            "devices": [dict(device) for device in self.devices],
            **self.extra,
            "gpu_name": self.gpu_name,
            "simulated": self.simulated,
        }


@dataclass(frozen=True)
class Environment:
    """Where the run happened: versions, the servers and the scorers' identities.

    The pytest layer gathers it (it knows the engine, the scorers and pytest's version) and
    hands it to ``build_summary`` as plain data.
    """

    plugin_version: str
    python: str
    platform: str
    pytest: str
    torch: str | None
    device: str
    servers: tuple[ServerSummary, ...] = ()
    #: scorer name -> identity (model, weights, device, class); user scorers may add keys
    scorers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: further facts (e.g. simulated_model_loads), shown as given
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plugin_version": self.plugin_version,
            "python": self.python,
            "platform": self.platform,
            "pytest": self.pytest,
            "torch": self.torch,
            "servers": [server.to_dict() for server in self.servers],
            "scorers": {name: dict(identity) for name, identity in self.scorers.items()},
            "device": self.device,
            **self.extra,
        }
