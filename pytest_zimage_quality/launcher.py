"""One ComfyUI process per local GPU: start them, wait until they answer, stop them for sure.

ComfyUI runs one prompt at a time per process, so a host with N GPUs serves a run fastest as
N servers (``CUDA_VISIBLE_DEVICES=i python main.py --listen 127.0.0.1 --port P``), each on a
free loopback port. ``LocalLauncher`` starts them together, waits for each ``/system_stats``
with a deadline, keeps each one's output in a log file, and stops them at the end: SIGTERM to
the process group, then SIGKILL after a grace period, idempotently, also from ``atexit``.

The command is a template (``{host}``, ``{port}``, ``{gpu}``, ``{python}``), so tests start the
built-in fake (``python -m pytest_zimage_quality._fake``) exactly as a real ComfyUI would be.
:class:`ServerProcess` (one process) is shared with the Ray pool's actors. Standard library
only: readiness is checked with ``urllib``, no httpx.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import ZImageError

__all__ = [
    "GPU_ENV",
    "LaunchError",
    "LocalLauncher",
    "LocalServer",
    "ServerProcess",
    "comfyui_command",
    "discover_gpus",
    "fake_command",
    "free_port",
]

#: Overrides GPU discovery: "0,2" (indices or UUIDs) or "none".
GPU_ENV = "ZIMAGE_GPUS"


class LaunchError(ZImageError):
    """Raised when a local ComfyUI server cannot be started or never becomes ready."""


@dataclass(frozen=True)
class LocalServer:
    """A started server: where it answers, which GPU it has, where its log is."""

    url: str
    port: int
    gpu: str | None
    pid: int
    log_path: Path
    system_stats: Mapping[str, Any] = field(default_factory=dict, repr=False)


def comfyui_command(main_py: str | Path, *, python: str = sys.executable) -> list[str]:
    """The command of a real ComfyUI installation (its ``main.py``)."""
    path = Path(main_py)
    if path.is_dir():
        path = path / "main.py"
    if not path.is_file():
        raise LaunchError(
            f"no ComfyUI main.py at {path}",
            hint="point the option at a ComfyUI checkout (the folder holding main.py)",
        )
    return [python, str(path), "--listen", "{host}", "--port", "{port}"]


def fake_command(*extra: str, python: str = sys.executable) -> list[str]:
    """The built-in fake ComfyUI as a process (tests, benchmarks, CPU-only dry runs)."""
    return [
        python,
        "-m",
        "pytest_zimage_quality._fake",
        "--listen",
        "{host}",
        "--port",
        "{port}",
        *extra,
    ]


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (the server may still lose a race for it: we retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def discover_gpus(
    env: Mapping[str, str] | None = None,
    *,
    run: Callable[[Sequence[str]], str] | None = None,
) -> list[str]:
    """The GPUs to use: ``ZIMAGE_GPUS``, else ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``.

    Returns device ids as ``CUDA_VISIBLE_DEVICES`` takes them ("0", "1", or UUIDs); an empty
    list when there is none.
    """
    env = os.environ if env is None else env
    for name in (GPU_ENV, "CUDA_VISIBLE_DEVICES"):
        value = env.get(name)
        if value is not None and value.strip():
            if value.strip().lower() in ("none", "-1"):
                return []
            return [item.strip() for item in value.split(",") if item.strip()]
    try:
        listing = (run or _nvidia_smi)(["nvidia-smi", "-L"])
    except (OSError, subprocess.SubprocessError):
        return []
    return re.findall(r"^GPU (\d+):", listing, flags=re.MULTILINE)


def _nvidia_smi(argv: Sequence[str]) -> str:
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(argv[0])
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=20).stdout


class ServerProcess:
    """One ComfyUI process on a free port of ``host``: start, wait ready, stop (idempotent)."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        log_path: Path,
        host: str = "127.0.0.1",
        gpu: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.command = list(command)
        self.log_path = log_path
        self.host = host
        self.gpu = gpu
        self.env = dict(env or {})
        self.cwd = cwd
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Spawn on a fresh free port, in its own process group, output to the log."""
        self.port = free_port(self.host)
        values = {
            "host": self.host,
            "port": str(self.port),
            "gpu": self.gpu or "",
            "python": sys.executable,
        }
        argv = [part.format(**values) for part in self.command]
        env = {**os.environ, **self.env}
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"$ {' '.join(argv)}\n".encode())
            log.flush()
            try:
                self.process = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    cwd=self.cwd,
                    start_new_session=True,  # our own group: stop() reaches its children too
                )
            except OSError as exc:
                raise LaunchError(
                    f"cannot start {argv[0]}: {exc}",
                    hint="check the ComfyUI command and its python interpreter",
                ) from exc

    def wait_ready(self, deadline: float) -> Mapping[str, Any]:
        """Poll ``/system_stats`` until it answers (returns its body) or ``deadline`` passes."""
        assert self.process is not None, "start() first"
        while True:
            code = self.process.poll()
            if code is not None:
                raise LaunchError(
                    f"the server on port {self.port} exited with status {code} before it was "
                    f"ready; the end of its log ({self.log_path}):\n{self.log_tail()}",
                    hint="run the command by hand to see why; check the GPU and the install",
                )
            try:
                with urllib.request.urlopen(f"{self.url}/system_stats", timeout=2) as reply:
                    body = json.loads(reply.read().decode("utf-8"))
                    return body if isinstance(body, dict) else {}
            except (OSError, ValueError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"the server on port {self.port} did not answer /system_stats in time; "
                    f"the end of its log ({self.log_path}):\n{self.log_tail()}",
                    hint="raise the launch timeout if the models load slowly",
                )
            time.sleep(0.2)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds. Safe to call twice."""
        with self._lock:
            process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=grace)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


class LocalLauncher:
    """One server per GPU (or ``cpu_servers`` without GPUs) on loopback; a context manager.

    ``gpus``: the device ids to use (None: :func:`discover_gpus`). With no GPU found and no
    ``cpu_servers``, :meth:`start` raises a :class:`LaunchError` saying so.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        log_dir: Path,
        gpus: Sequence[str] | None = None,
        cpu_servers: int = 0,
        host: str = "127.0.0.1",
        ready_timeout: float = 300.0,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        attempts: int = 3,
    ) -> None:
        self.command = list(command)
        self.log_dir = log_dir
        self.gpus = None if gpus is None else list(gpus)
        self.cpu_servers = cpu_servers
        self.host = host
        self.ready_timeout = ready_timeout
        self.env = dict(env or {})
        self.cwd = cwd
        self.attempts = attempts
        self.processes: list[ServerProcess] = []
        self.servers: list[LocalServer] = []
        self._stopped = False

    def start(self) -> list[LocalServer]:
        """Start every server, then wait for all of them; on any failure stop them all."""
        devices: list[str | None] = list(discover_gpus() if self.gpus is None else self.gpus)
        if not devices:
            if self.cpu_servers <= 0:
                raise LaunchError(
                    "no GPU found to start ComfyUI servers on (nvidia-smi -L lists none and "
                    f"neither {GPU_ENV} nor CUDA_VISIBLE_DEVICES names any)",
                    hint=f"name the GPUs ({GPU_ENV}=0,1), or ask for CPU servers explicitly",
                )
            devices = [None] * self.cpu_servers
        atexit.register(self.stop)
        try:
            for index, gpu in enumerate(devices):
                name = f"gpu{gpu}" if gpu is not None else f"cpu{index}"
                process = ServerProcess(
                    self.command,
                    log_path=self.log_dir / f"comfyui-{_safe(name)}.log",
                    host=self.host,
                    gpu=gpu,
                    env=self.env,
                    cwd=self.cwd,
                )
                process.start()
                self.processes.append(process)
            deadline = time.monotonic() + self.ready_timeout
            for process in self.processes:
                stats = self._ready(process, deadline)
                assert process.process is not None
                self.servers.append(
                    LocalServer(
                        url=process.url,
                        port=process.port,
                        gpu=process.gpu,
                        pid=process.process.pid,
                        log_path=process.log_path,
                        system_stats=stats,
                    )
                )
        except BaseException:
            self.stop()
            raise
        return list(self.servers)

    def _ready(self, process: ServerProcess, deadline: float) -> Mapping[str, Any]:
        """Wait for one server; if it died early (a lost port race), start it again."""
        for attempt in range(self.attempts):
            try:
                return process.wait_ready(deadline)
            except LaunchError:
                if attempt + 1 >= self.attempts or time.monotonic() > deadline:
                    raise
                process.stop()
                process.start()
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop every server (all at once, so the grace periods overlap). Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        threads = [threading.Thread(target=p.stop, daemon=True) for p in self.processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def __enter__(self) -> list[LocalServer]:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _safe(text: str) -> str:
    return re.sub(r"[^\w.-]+", "_", text)
