"""The servers of a run: connected, grouped into hardware classes, checked before any image.

Every server is asked for its ``/system_stats`` and for the identity of every model file the
run's configs use; servers that report the same hardware, software and files form one
:class:`~.hardware.HardwareClass`. The preflight checks every config's graph on every server
(any server may be handed any config). Where a class has several servers, the determinism
check generates one reference case on each of them and compares the image hashes: only a
class whose servers draw bit-identical images may split a (prompt, seed) pair over servers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ZImageError
from .hardware import (
    HardwareClass,
    HardwareProfile,
    classify,
    determinism_plan,
    determinism_report,
)
from .hosts import HostAddressError, parse_host
from .launcher import LaunchError, LocalLauncher, comfyui_command, fake_command
from .provenance import Lane, server_commit
from .workflow import model_files

if TYPE_CHECKING:
    from .comfyui import ComfyUIClient, GeneratedImage, ServerInfo
    from .scheduler import ImageRequest
    from .suite import Suite

__all__ = [
    "LaunchSettings",
    "LaunchedServers",
    "PoolServer",
    "check_determinism",
    "connect_servers",
    "preflight",
    "read_hosts_file",
    "stats_body",
]

log = logging.getLogger(__name__)


@dataclass
class PoolServer:
    """One connected server: its client, what it reports, and its hardware class."""

    client: ComfyUIClient
    info: ServerInfo
    profile: HardwareProfile
    hardware_class: str = ""
    model_ids: Mapping[str, object] = field(default_factory=dict, repr=False)
    #: ``/system_stats`` as the server sent it (the ComfyUI commit, if reported)
    system_stats: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def lane(self) -> Lane:
        """What makes this server's images comparable with another run's (the cache key)."""
        return Lane.from_profile(self.profile, commit=server_commit(self.system_stats))

    @property
    def url(self) -> str:
        return self.client.base_url


class LaunchSettings(Protocol):
    """The options that start servers for the run (the pytest layer's ``Settings`` has them)."""

    @property
    def hosts_file(self) -> Path | None: ...
    @property
    def comfyui(self) -> str | None: ...
    @property
    def gpus(self) -> Sequence[str] | None: ...
    @property
    def cpu_servers(self) -> int: ...
    @property
    def comfyui_args(self) -> Sequence[str]: ...
    @property
    def launch_timeout(self) -> float: ...
    @property
    def ray(self) -> str | None: ...
    @property
    def ray_servers(self) -> int | None: ...


class LaunchedServers:
    """The servers this run starts (one per local GPU, or on a Ray cluster) and stops."""

    def __init__(self) -> None:
        self._stoppers: list[Callable[[], None]] = []

    def start(self, settings: LaunchSettings, log_dir: Path) -> list[str]:
        """Start what the options ask for; returns their URLs (none asked: none)."""
        urls = []
        if settings.hosts_file is not None:
            urls += read_hosts_file(settings.hosts_file)
        if settings.comfyui is None:
            if settings.ray is not None:
                raise LaunchError(
                    "--zimage-ray needs the ComfyUI command to start on the cluster",
                    hint="give --zimage-comfyui with the path of ComfyUI's main.py on the nodes",
                )
            return urls
        if settings.comfyui == "fake":
            command = fake_command()
        else:
            command = comfyui_command(settings.comfyui)
        command += list(settings.comfyui_args)
        if settings.ray is not None:
            from .ray_pool import RayPool  # noqa: PLC0415 - Ray only when a Ray pool is asked for

            # --zimage-gpus=none: CPU servers (one CPU each), as many as --zimage-ray-servers
            # or --zimage-cpu-servers say; else one GPU per actor
            cpu_only = _gpu_list(settings.gpus) == []
            servers = settings.ray_servers
            if servers is None and cpu_only:
                servers = max(1, settings.cpu_servers)
            ray_pool = RayPool(
                command,
                address=settings.ray,
                servers=servers,
                num_gpus=0.0 if cpu_only else 1.0,
                ready_timeout=settings.launch_timeout,
                log_dir=str(log_dir),
            )
            self._stoppers.append(ray_pool.stop)
            return urls + [server.url for server in ray_pool.start()]
        launcher = LocalLauncher(
            command,
            log_dir=log_dir,
            gpus=_gpu_list(settings.gpus),
            cpu_servers=settings.cpu_servers,
            ready_timeout=settings.launch_timeout,
        )
        self._stoppers.append(launcher.stop)
        return urls + [server.url for server in launcher.start()]

    def stop(self) -> None:
        """Stop every started server (idempotent: the launchers are)."""
        for stop in self._stoppers:
            try:
                stop()
            except Exception as exc:  # stopping must never hide the error that got us here
                log.warning("zimage: stopping the started servers: %s", exc)


def _gpu_list(gpus: Sequence[str] | None) -> list[str] | None:
    """None: discover every visible GPU; ``("none",)``: no GPU (CPU servers only)."""
    if not gpus:
        return None
    return [] if list(gpus) == ["none"] else list(gpus)


def read_hosts_file(path: Path) -> list[str]:
    """One host address per line; blank lines and ``#`` comments are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ZImageError(
            f"cannot read the hosts file {path}: {exc}",
            hint="fix --zimage-hosts-file (one host:port or URL per line)",
        ) from exc
    urls = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            urls.append(parse_host(text).url)
        except HostAddressError as exc:
            raise ZImageError(
                f"{path}:{number}: {exc}", hint="one host:port or http(s)://host:port per line"
            ) from exc
    return urls


def config_graphs(suites: Sequence[Suite]) -> dict[str, Mapping[str, Any]]:
    """One graph per config, labelled as errors name it."""
    graphs: dict[str, Mapping[str, Any]] = {}
    for suite in suites:
        for config in suite.configs:
            case = suite.make_case(suite.prompts[0].key, config.key, suite.seeds[0])
            label = config.label if len(suites) == 1 else f"{suite.name}/{config.label}"
            graphs[f"config {label}"] = suite.graph_for(case)
    return graphs


def connect_servers(
    urls: Sequence[str],
    suites: Sequence[Suite],
    make_client: Callable[[str], ComfyUIClient],
) -> tuple[list[PoolServer], list[HardwareClass]]:
    """Connect to every server (in parallel), look up the run's model files on each, and
    group them into hardware classes. Duplicate URLs are one server."""
    files = sorted(
        {
            f"{folder}/{name}"
            for g in config_graphs(suites).values()
            for folder, name in model_files(g)
        }
    )

    def connect(url: str) -> PoolServer:
        client = make_client(url)
        try:
            info = client.connect()
            stats = client.system_stats()
            ids = {f: client.model_identity(*f.split("/", 1)) for f in files}
        except BaseException:
            client.close()
            raise
        profile = HardwareProfile.from_system_stats(client.base_url, stats or stats_body(info), ids)
        return PoolServer(client, info, profile, model_ids=ids, system_stats=stats)

    unique = list(dict.fromkeys(urls))
    with ThreadPoolExecutor(max_workers=min(16, max(1, len(unique)))) as executor:
        futures = [executor.submit(connect, url) for url in unique]
        servers, errors = [], []
        for future in futures:
            try:
                servers.append(future.result())
            except ZImageError as exc:
                errors.append(exc)
    if errors:
        for server in servers:
            server.client.close()
        raise errors[0]
    classes = classify(s.profile for s in servers)
    for klass in classes:
        for server in servers:
            if server.url in klass.servers:
                server.hardware_class = klass.id
    return servers, classes


def preflight(servers: Sequence[PoolServer], suites: Sequence[Suite]) -> None:
    """Every config's model files and node choices exist on every server."""
    graphs = config_graphs(suites)
    for server in servers:
        server.client.check_graphs(graphs)


def check_determinism(
    servers: Sequence[PoolServer],
    classes: Sequence[HardwareClass],
    request: ImageRequest,
    *,
    timeout: float,
) -> tuple[dict[str, Any], dict[str, GeneratedImage]]:
    """Generate ``request`` on every server of each class that has several; the summary's
    ``determinism`` block and each server's image (the caller keeps one as the case's).
    A server that fails the check counts as 'not checked': its class gets pinned pairs."""
    plan = determinism_plan(classes)
    by_url = {s.url: s for s in servers}
    urls = [url for members in plan.values() for url in members]

    def generate(url: str) -> GeneratedImage:
        client = by_url[url].client
        prompt_id = client.submit(request.graph, output_node=request.output_node)
        finished = client.wait(prompt_id, timeout=timeout)
        return client.fetch_result(finished, output_node=request.output_node)

    images: dict[str, GeneratedImage] = {}
    if urls:
        with ThreadPoolExecutor(max_workers=min(16, len(urls))) as executor:
            futures = {url: executor.submit(generate, url) for url in urls}
            for url, future in futures.items():
                try:
                    images[url] = future.result()
                except ZImageError as exc:
                    log.warning("zimage: the determinism check failed on %s: %s", url, exc)
    hashes = {url: (images[url].sha256 if url in images else None) for url in urls}
    return determinism_report(classes, request.case.id, hashes), images


def stats_body(info: ServerInfo) -> dict[str, Any]:
    """``/system_stats`` as :meth:`HardwareProfile.from_system_stats` reads it."""
    return {
        "system": {
            "comfyui_version": info.comfyui_version,
            "pytorch_version": info.pytorch_version,
            "python_version": info.python_version,
        },
        "devices": [{"name": d.name} for d in info.devices],
    }
