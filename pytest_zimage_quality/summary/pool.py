"""The pool in the run summary: hardware classes, the determinism check, what each server did.

A reader of a gate needs to know which hardware made the two sides of each comparison and
whether the run spread its work well. The generating side reports it as plain JSON
(``generation.Generation.report()``, shipped by xdist workers inside their environment);
:class:`PoolSummary` is its typed form, written to summary.json as the top-level
``hardware_classes``, ``determinism`` and ``pool`` keys. Each record's ``host`` says which
server made its image. Pure: no pytest, no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PoolSummary", "ServerWork"]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class ServerWork:
    """One server of the pool: what it made, the loads it paid, how long it sat idle."""

    url: str
    hardware_class: str
    images: int
    loads: int
    busy_seconds: float
    idle_fraction: float | None  # of the pool's wall time, None when nothing was generated
    image_seconds: float  # learnt seconds per image (the next run's estimate)
    load_seconds: float  # learnt seconds per model load
    stolen_in: int = 0  # cases taken from a slower server's queue
    stolen_out: int = 0
    moved_out: int = 0  # cases moved to other servers when this one died
    alive: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServerWork:
        return cls(
            url=str(data.get("url", "")),
            hardware_class=str(data.get("hardware_class", "")),
            images=int(data.get("images", 0)),
            loads=int(data.get("loads", 0)),
            busy_seconds=float(data.get("busy_seconds", 0.0)),
            idle_fraction=_float(data.get("idle_fraction")),
            image_seconds=float(data.get("image_seconds", 0.0)),
            load_seconds=float(data.get("load_seconds", 0.0)),
            stolen_in=int(data.get("stolen_in", 0)),
            stolen_out=int(data.get("stolen_out", 0)),
            moved_out=int(data.get("moved_out", 0)),
            alive=bool(data.get("alive", True)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "hardware_class": self.hardware_class,
            "images": self.images,
            "loads": self.loads,
            "busy_seconds": self.busy_seconds,
            "idle_fraction": self.idle_fraction,
            "image_seconds": self.image_seconds,
            "load_seconds": self.load_seconds,
            "stolen_in": self.stolen_in,
            "stolen_out": self.stolen_out,
            "moved_out": self.moved_out,
            "alive": self.alive,
        }


@dataclass(frozen=True)
class PoolSummary:
    """The servers of the run, grouped into hardware classes, and how the pool used them."""

    #: ``hardware.HardwareClass.to_dict()`` of each class: id, label, servers, GPU, versions
    hardware_classes: tuple[Mapping[str, Any], ...] = ()
    #: ``hardware.determinism_report``: the cross-server check; None when no class has 2+
    determinism: Mapping[str, Any] | None = None
    servers: tuple[ServerWork, ...] = ()
    wall_seconds: float | None = None
    #: cases a dead server held, each resubmitted on another: {"case", "from"}
    moved: tuple[Mapping[str, str], ...] = ()
    #: finished cases made again because their whole hardware class died
    reruns: tuple[str, ...] = ()
    replans: int = 0
    #: learnt (image, load) seconds per class: ``{"image_seconds", "load_seconds"}``
    estimates: Mapping[str, Mapping[str, float]] | None = None

    @classmethod
    def from_report(cls, report: Mapping[str, Any]) -> PoolSummary:
        """From ``Generation.report()`` (or summary.json's three keys put side by side)."""
        pool = report.get("pool") or {}
        return cls(
            hardware_classes=tuple(dict(c) for c in report.get("hardware_classes") or ()),
            determinism=report.get("determinism"),
            servers=tuple(ServerWork.from_dict(s) for s in pool.get("servers") or ()),
            wall_seconds=_float(pool.get("wall_seconds")),
            moved=tuple(dict(m) for m in pool.get("moved") or ()),
            reruns=tuple(str(r) for r in pool.get("reruns") or ()),
            replans=int(pool.get("replans", 0)),
            estimates=pool.get("estimates") or {},
        )

    def class_label(self, class_id: str) -> str:
        for klass in self.hardware_classes:
            if klass.get("id") == class_id:
                return str(klass.get("label", class_id))
        return class_id

    def class_lines(self) -> list[str]:
        """One line per hardware class: its id, what it is, and its servers."""
        lines = []
        for klass in self.hardware_classes:
            servers = [str(s) for s in klass.get("servers") or ()]
            word = "server" if len(servers) == 1 else "servers"
            lines.append(
                f"hardware class {klass.get('id')}: {klass.get('label')} — {len(servers)} "
                f"{word}: " + ", ".join(servers)
            )
        return lines

    def server_lines(self) -> list[str]:
        """One line per server: images, loads, idle share, and what moved."""
        lines = []
        for server in self.servers:
            idle = "" if server.idle_fraction is None else f", idle {server.idle_fraction:.0%}"
            moved = f", {server.moved_out} moved away (died)" if server.moved_out else ""
            stolen = f", {server.stolen_in} taken over" if server.stolen_in else ""
            lines.append(
                f"server {server.url}: {server.images} images, {server.loads} model loads"
                f"{idle}{stolen}{moved}"
            )
        return lines

    def terminal_lines(self) -> list[str]:
        """The terminal summary's lines: the classes, each server's work, what moved."""
        lines = [f"zimage {line}" for line in self.class_lines()]
        if self.determinism is not None:
            for klass in self.determinism.get("classes") or ():
                verdict = (
                    "bit-identical images across its servers: pairs may split"
                    if klass.get("bit_identical")
                    else "images differ across its servers (or were not all made): each "
                    "(prompt, seed) kept on one server"
                )
                lines.append(f"zimage determinism {klass.get('id')}: {verdict}")
        lines += [f"zimage {line}" for line in self.server_lines()]
        if self.moved:
            lines.append(
                f"zimage: {len(self.moved)} case(s) resubmitted on another server "
                "after theirs stopped answering"
            )
        return lines

    def pool_dict(self) -> dict[str, Any]:
        """summary.json's ``pool`` block."""
        return {
            "wall_seconds": self.wall_seconds,
            "servers": [server.to_dict() for server in self.servers],
            "moved": [dict(m) for m in self.moved],
            "reruns": list(self.reruns),
            "replans": self.replans,
            "estimates": {k: dict(v) for k, v in (self.estimates or {}).items()},
        }
