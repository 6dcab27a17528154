"""ComfyUI servers on a Ray cluster: one actor per GPU, each running one server process.

A cluster is Ray's to manage; this module only asks it for actors. Each actor reserves one
GPU (``num_gpus=1``; Ray sets its ``CUDA_VISIBLE_DEVICES``), starts the configured ComfyUI
command on a free port of its node (:class:`.launcher.ServerProcess`), waits for
``/system_stats`` and reports the endpoint. The run uses the endpoints as its pool and, at the
end, each actor stops its server (SIGTERM, then SIGKILL, to the process group) before the actor
itself is killed. If the driver dies, Ray ends its actors and, by default on Linux, their child
processes with them.

``address``: ``"auto"`` (the cluster this machine is part of, ``ray start`` or KubeRay),
``"local"`` (start a one-machine Ray here), or a cluster address (``ray://head:10001``).
Ray is an optional extra: ``pip install 'pytest-zimage-quality[ray]'``; it is imported only
when a Ray pool is started.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from .launcher import LaunchError, ServerProcess

__all__ = ["RayPool", "RayServer", "ServerActor"]

INSTALL_HINT = "pip install 'pytest-zimage-quality[ray]'"


@dataclass(frozen=True)
class RayServer:
    """A server an actor started: its endpoint, node and GPUs."""

    url: str
    node_ip: str
    gpu_ids: tuple[str, ...]
    log_path: str
    system_stats: Mapping[str, Any] = field(default_factory=dict, repr=False)


class ServerActor:
    """The body of one actor (wrapped by ``ray.remote`` at start): one ComfyUI process."""

    def __init__(self) -> None:
        self.process: ServerProcess | None = None

    def start(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        ready_timeout: float,
        log_dir: str,
        listen: str,
    ) -> dict[str, Any]:
        ray = _ray()
        node_ip = ray.util.get_node_ip_address()
        host = node_ip if listen == "node" else listen
        gpu_ids = tuple(str(g) for g in ray.get_gpu_ids())
        name = "-".join(gpu_ids) or f"cpu{os.getpid()}"
        base = Path(log_dir) if log_dir else Path(tempfile.gettempdir()) / "zimage-ray"
        log_path = base / f"comfyui-{socket.gethostname()}-gpu{name}.log"
        self.process = ServerProcess(command, log_path=log_path, host=host, env=env)
        self.process.start()
        try:
            stats = self.process.wait_ready(time.monotonic() + ready_timeout)
        except LaunchError:
            self.process.stop()
            raise
        return {
            "url": self.process.url,
            "node_ip": node_ip,
            "gpu_ids": gpu_ids,
            "log_path": str(log_path),
            "system_stats": dict(stats),
        }

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def log_tail(self) -> str:
        return self.process.log_tail() if self.process is not None else ""


def _ray() -> Any:
    try:
        import ray  # noqa: PLC0415 - optional extra, loaded only for a Ray pool
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"the Ray pool needs Ray: {INSTALL_HINT}") from exc
    return ray


class RayPool:
    """Start ``servers`` ComfyUI actors on a Ray cluster (default: one per cluster GPU)."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        address: str = "auto",
        servers: int | None = None,
        num_gpus: float = 1.0,
        num_cpus: float = 1.0,
        ready_timeout: float = 600.0,
        log_dir: str = "",
        listen: str = "node",
        env: Mapping[str, str] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self.command = list(command)
        self.address = address
        self.servers = servers
        self.num_gpus = num_gpus
        self.num_cpus = num_cpus
        self.ready_timeout = ready_timeout
        self.log_dir = log_dir
        self.listen = listen
        self.env = dict(env or {})
        self.init_kwargs = dict(init_kwargs or {})
        self.actors: list[Any] = []
        self.endpoints: list[RayServer] = []
        self._owns_ray = False
        self._stopped = False

    def _connect(self) -> Any:
        ray = _ray()
        if ray.is_initialized():
            return ray
        kwargs: dict[str, Any] = {"include_dashboard": False, **self.init_kwargs}
        try:
            if self.address == "local":
                ray.init(**kwargs)
            else:
                ray.init(address=self.address, **kwargs)
        except (ConnectionError, RuntimeError) as exc:
            raise LaunchError(
                f"cannot connect to the Ray cluster at {self.address!r}: {exc}",
                hint="start one with `ray start --head` (or use 'local'), or give its address",
            ) from exc
        self._owns_ray = True
        return ray

    def start(self) -> list[RayServer]:
        """Create the actors, start their servers, and return the endpoints once all answer."""
        ray = self._connect()
        count = self.servers
        if count is None:
            count = int(ray.cluster_resources().get("GPU", 0) // max(self.num_gpus, 1e-9))
        if count <= 0:
            self.stop()
            raise LaunchError(
                "the Ray cluster has no GPU to start a ComfyUI server on",
                hint="add GPU nodes, or ask for a number of servers explicitly",
            )
        remote = ray.remote(num_gpus=self.num_gpus, num_cpus=self.num_cpus)(ServerActor)
        try:
            self.actors = [remote.remote() for _ in range(count)]
            refs = [
                actor.start.remote(
                    self.command, self.env, self.ready_timeout, self.log_dir, self.listen
                )
                for actor in self.actors
            ]
            try:
                # the actors' own deadline plus the time Ray may need to place them
                results = ray.get(refs, timeout=self.ready_timeout + 60)
            except ray.exceptions.GetTimeoutError as exc:
                raise LaunchError(
                    f"{count} ComfyUI actors were not all running within "
                    f"{self.ready_timeout + 60:.0f} s (cluster resources: "
                    f"{ray.cluster_resources()})",
                    hint="ask for fewer servers than the cluster has GPUs, or raise the timeout",
                ) from exc
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, LaunchError) else exc
                raise LaunchError(
                    f"a ComfyUI actor failed to start its server: {cause}",
                    hint="check the ComfyUI command on the cluster's nodes",
                ) from exc
        except BaseException:
            self.stop()
            raise
        self.endpoints = [
            RayServer(
                url=r["url"],
                node_ip=r["node_ip"],
                gpu_ids=tuple(r["gpu_ids"]),
                log_path=r["log_path"],
                system_stats=r["system_stats"],
            )
            for r in results
        ]
        return list(self.endpoints)

    def stop(self) -> None:
        """Each actor stops its server, then the actors are killed. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        ray = _ray()
        if self.actors and ray.is_initialized():
            stops = [actor.stop.remote() for actor in self.actors]
            # a dead actor's server died with it (Ray kills a worker's children)
            with contextlib.suppress(Exception):
                ray.get(stops, timeout=30)
            for actor in self.actors:
                with contextlib.suppress(Exception):  # already gone
                    ray.kill(actor)
        self.actors = []
        if self._owns_ray:
            ray.shutdown()

    def __enter__(self) -> list[RayServer]:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
