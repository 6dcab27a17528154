"""summary.json's CI blocks built from plain data: ``provenance`` (the lane and every
identity the results depend on) and ``vram`` (per config, the server's peak memory).

The pytest layer gathers the inputs (each server's ``/system_stats``, the model files'
identities, the suites, the scorers); this module only assembles them (docs/artifacts.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..hardware import HardwareProfile
from ..provenance import SuiteFingerprint, build_provenance, server_commit
from ..vram import ConfigVram, vram_summary
from ..workflow import canonical_json

__all__ = ["provenance_block", "suite_fingerprint", "vram_block"]


def suite_fingerprint(
    name: str, sha256: str, workflow_graph: Mapping[str, Any]
) -> SuiteFingerprint:
    """A suite by content: its own hash (suite file + workflow) and the workflow's alone."""
    workflow = hashlib.sha256(canonical_json(dict(workflow_graph)).encode("utf-8")).hexdigest()
    return SuiteFingerprint(name=name, sha256=sha256, workflow_sha256=workflow)


def _stats_body(server: Mapping[str, Any]) -> Mapping[str, Any]:
    """A ``/system_stats`` body: as the server sent it (``{"system", "devices"}``), or rebuilt
    from summary.json's flattened ``environment.servers`` record."""
    if isinstance(server.get("system"), Mapping):
        return server
    devices = [d for d in server.get("devices") or () if isinstance(d, Mapping)]
    if not devices and server.get("gpu_name"):
        devices = [{"name": str(server["gpu_name"])}]
    return {"system": server, "devices": devices}


def provenance_block(
    servers: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    models: Mapping[str, Mapping[str, object]],
    suites: Iterable[SuiteFingerprint],
    scorers: Mapping[str, Mapping[str, Any]],
    plugin_version: str,
    runner_python: str,
    regenerated: Sequence[str] = (),
) -> dict[str, Any]:
    """``servers``: (url, its ``/system_stats`` body or environment record); ``models``: url ->
    {"folder/file": identity}; ``regenerated``: notes on cached images from another lane that
    were made again. Adds ``lane_ids`` (one per server, in order) to ``Provenance.to_dict()``."""
    profiles = []
    for url, server in servers:
        body = _stats_body(server)
        profiles.append(
            (HardwareProfile.from_system_stats(url, body, models.get(url)), server_commit(body))
        )
    block = build_provenance(
        profiles,
        suites=suites,
        scorers=scorers,
        plugin_version=plugin_version,
        runner_python=runner_python,
    ).to_dict()
    block["lane_ids"] = [row["lane"] for row in block["servers"]]
    block["regenerated_other_lane"] = list(regenerated)
    return block


def vram_block(
    peaks: Mapping[str, ConfigVram], references: Mapping[str, str]
) -> dict[str, Any] | None:
    """Per config name, :func:`~..vram.vram_summary`'s entry against its suite's reference;
    ``references``: config name -> its reference's config name. None without samples."""
    if not peaks:
        return None
    out: dict[str, Any] = {}
    for reference in sorted(set(references.values())):
        group = {k: v for k, v in peaks.items() if references.get(k) == reference}
        out.update(vram_summary(group, reference))
    return out
