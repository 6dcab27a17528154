"""``FakeComfyUI``: the public facade over the fake's parts.

It wires the model folders, validation, executor and HTTP server together, owns their
lifecycle (``start``/``stop``, context manager) and exposes what tests and benchmarks assert
on: the request log, handler errors, counters, the busy timeline and fault injection. The
aiohttp server module is imported only when the fake starts.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .compat import VersionProfile
from .executor import BusyInterval, Executor, RunRecord
from .faults import Faults
from .files import FileStore
from .log import RecordedRequest
from .models import DEFAULT_MODELS, VRAM_BASELINE, BrokenStyle, ModelRegistry
from .nodes import NodeCatalog, models_for_graphs

if TYPE_CHECKING:
    from .server import FakeServer

__all__ = ["FakeComfyUI", "FakeComfyUIError"]

_GIB = 1024**3


class FakeComfyUIError(Exception):
    """Raised in the test thread when the fake itself failed while serving a request."""


def _union_length(intervals: list[tuple[float, float]]) -> float:
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


class FakeComfyUI:
    """A ComfyUI server on a free loopback port, speaking the 0.18.1 protocol.

    ``models`` maps model folders to file names (default: the example suite's files; ``{}``
    for empty folders). ``quantization_levels`` maps file names to a perturbation level in
    [0, 1] (default guessed from the name: BF16 0, FP8 transformer 0.15, NVFP4 0.3, FP8 text
    encoder 0.05); ``broken_models`` render off-prompt images (``broken_style="noise"`` for
    noise). ``image_latency`` is the simulated time per image, the whole run (the fake's own rendering and
    encoding are taken out of its sampling sleep, as a real server's time includes them) and ``load_latency`` the
    time a model load takes whenever the graph's model files differ from the loaded ones;
    ``pixel_latency`` is seconds per megapixel of VAE decoding (VAEDecode, VAEDecodeTiled;
    VAEEncode costs 1 %), so a 4096x4096 tiled decode is slow and interruptible as on a CPU.

    ``speed_factor`` multiplies ``image_latency`` (one server of a pool slower than the others;
    ``speed_factors()`` draws a seeded set). ``device`` is the name ``/system_stats`` reports
    (``"cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"``), ``pytorch_version`` its torch;
    ``model_sizes`` overrides the VRAM a loaded file takes (default ``model_size()``: see
    ``_fake/models.py``). ``faults`` injects failures: see ``docs/fixtures.md``.
    """

    def __init__(
        self,
        *,
        models: Mapping[str, Iterable[str]] | None = None,
        version: str = "0.18.1",
        device: str = "cpu",
        vram_total: int | None = None,
        image_latency: float = 0.0,
        load_latency: float = 0.0,
        pixel_latency: float = 0.0,
        speed_factor: float = 1.0,
        quantization_levels: Mapping[str, float] | None = None,
        broken_models: Iterable[str] = (),
        broken_style: BrokenStyle = "off_prompt",
        disable_metadata: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        output_dir: str | Path | None = None,
        model_sizes: Mapping[str, int] | None = None,
        pytorch_version: str = "2.14.1+cu130",
    ) -> None:
        if speed_factor <= 0:
            raise ValueError(f"speed_factor must be positive, not {speed_factor}")
        self.version = version
        self.profile = VersionProfile(version)
        self.faults = Faults()
        self.disable_metadata = disable_metadata
        self._registry = ModelRegistry(
            DEFAULT_MODELS if models is None else models,
            quantization_levels,
            broken_models,
            broken_style,
            model_sizes,
        )
        self._pytorch_version = pytorch_version
        self._catalog = NodeCatalog(self._registry.folders)
        self._files = FileStore(Path(output_dir) if output_dir is not None else None)
        self._errors: list[BaseException] = []
        self._errors_lock = threading.Lock()
        self._executor = Executor(
            catalog=self._catalog,
            profile=self.profile,
            models=self._registry,
            files=self._files,
            faults=self.faults,
            image_latency=image_latency,
            load_latency=load_latency,
            pixel_latency=pixel_latency,
            speed_factor=speed_factor,
            disable_metadata=disable_metadata,
            record_error=self._record_error,
        )
        ram = 24 * _GIB
        if device == "cpu":
            vram = ram if vram_total is None else vram_total
        else:
            vram = 80 * _GIB if vram_total is None else vram_total
        self._device = (device, vram, ram)
        self._host = host
        self._port = port
        self._server: FakeServer | None = None
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeComfyUI:
        """Listen, start the worker, and return once a TCP connection succeeds."""
        from .server import DeviceInfo, FakeServer  # noqa: PLC0415 - aiohttp only when serving

        if self._started:
            raise RuntimeError("FakeComfyUI is already started")
        name, vram, ram = self._device
        self._server = FakeServer(
            executor=self._executor,
            catalog=self._catalog,
            models=self._registry,
            files=self._files,
            faults=self.faults,
            profile=self.profile,
            device=DeviceInfo(name, vram, int(vram * 0.95), ram, int(ram * 0.93)),
            disable_metadata=self.disable_metadata,
            record_error=self._record_error,
            host=self._host,
            port=self._port,
            pytorch_version=self._pytorch_version,
        )
        self._server.start()
        self._executor.start()
        self._started = True
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        if self.faults.mode != "serving":
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def stop(self, *, check: bool = True) -> None:
        """Stop serving, delete the output directory we created, re-raise handler errors."""
        if self._started:
            self._executor.stop()
            if self._server is not None:
                self._server.stop()
            self._started = False
            self._files.cleanup()
        if check:
            self.check_errors()

    def __enter__(self) -> FakeComfyUI:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(check=exc is None)

    @property
    def is_running(self) -> bool:
        return self._started

    # -- addresses --------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeComfyUI is not started")
        return self._server.port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``, no trailing slash."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://127.0.0.1:PORT/ws`` (append ``?clientId=...``)."""
        return f"ws://{self.host}:{self.port}/ws"

    # -- request log and errors -------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        if self._server is None:
            return []
        with self._server._requests_lock:
            return list(self._server.requests)

    def clear_requests(self) -> None:
        if self._server is not None:
            with self._server._requests_lock:
                self._server.requests.clear()

    def _record_error(self, exc: BaseException) -> None:
        with self._errors_lock:
            self._errors.append(exc)

    @property
    def errors(self) -> list[BaseException]:
        """Exceptions the fake raised while serving (its own bugs), oldest first."""
        with self._errors_lock:
            return list(self._errors)

    def check_errors(self) -> None:
        """Raise ``FakeComfyUIError`` (from the first one) if the fake raised while serving."""
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            summary = "; ".join(f"{type(e).__name__}: {e}" for e in errors)
            raise FakeComfyUIError(
                f"FakeComfyUI raised {len(errors)} error(s) while serving: {summary}"
            ) from errors[0]

    # -- simulated time and counters -----------------------------------------------------------

    @property
    def image_latency(self) -> float:
        """Simulated sampling seconds per image (settable while running)."""
        return self._executor.image_latency

    @image_latency.setter
    def image_latency(self, value: float) -> None:
        self._executor.image_latency = value

    @property
    def load_latency(self) -> float:
        """Simulated seconds per model load (settable while running)."""
        return self._executor.load_latency

    @load_latency.setter
    def load_latency(self, value: float) -> None:
        self._executor.load_latency = value

    @property
    def pixel_latency(self) -> float:
        """Simulated seconds per megapixel of VAE work (settable while running)."""
        return self._executor.pixel_latency

    @pixel_latency.setter
    def pixel_latency(self, value: float) -> None:
        self._executor.pixel_latency = value

    @property
    def speed_factor(self) -> float:
        """Multiplier on ``image_latency`` (settable while running)."""
        return self._executor.speed_factor

    @speed_factor.setter
    def speed_factor(self, value: float) -> None:
        if value <= 0:
            raise ValueError(f"speed_factor must be positive, not {value}")
        self._executor.speed_factor = value

    @staticmethod
    def speed_factors(count: int, *, spread: float = 1.5, seed: int = 0) -> list[float]:
        """Seeded speed factors for a pool of ``count`` fakes: the first is 1.0, the slowest
        is ``spread`` (when ``count`` > 1), the others uniform in between, in seeded order."""
        if count < 1:
            return []
        rng = random.Random(seed)
        inner = [1.0 + (spread - 1.0) * rng.random() for _ in range(max(0, count - 2))]
        rest = [*inner, spread] if count > 1 else []
        rng.shuffle(rest)
        return [1.0, *rest]

    @property
    def vram_used(self) -> int:
        """Bytes ``/system_stats`` reports as used now (baseline + loaded files + sampling)."""
        return VRAM_BASELINE + self._executor.vram_in_use()

    def model_size(self, filename: str) -> int:
        """The VRAM a model file takes while loaded."""
        return self._registry.size(filename)

    @property
    def generations(self) -> int:
        """Images sampled (KSampler batch items), cached runs excluded."""
        return self._executor.stats()[0]

    @property
    def model_loads(self) -> int:
        """How often the loaded model set changed (each change costs ``load_latency``)."""
        return self._executor.stats()[1]

    @property
    def model_unloads(self) -> int:
        """How often ``/free`` unloaded the models."""
        return self._executor.stats()[2]

    @property
    def runs(self) -> list[RunRecord]:
        """One record per executed prompt, in execution order."""
        return self._executor.stats()[3]

    @property
    def cached_runs(self) -> int:
        """Runs served entirely from the node cache."""
        return sum(1 for run in self.runs if run.fully_cached)

    @property
    def timeline(self) -> list[BusyInterval]:
        """Busy intervals (``run``, ``load``, ``generate``) in ``time.monotonic()`` seconds."""
        return self._executor.stats()[4]

    @property
    def loaded_models(self) -> frozenset[str]:
        return self._registry.loaded

    def busy_time(self, start: float, end: float, kinds: Iterable[str] = ("run",)) -> float:
        """Seconds within [start, end] covered by busy intervals of the given kinds."""
        wanted = set(kinds)
        clipped = [
            (max(start, i.start), min(end, i.end))
            for i in self.timeline
            if i.kind in wanted and i.end > start and i.start < end
        ]
        return _union_length(clipped)

    def idle_fraction(self, start: float, end: float) -> float:
        """Share of [start, end] (``time.monotonic()``) with no prompt running."""
        if end <= start:
            return 0.0
        return 1.0 - self.busy_time(start, end) / (end - start)

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Block until nothing is queued or running and /free is applied (else ``TimeoutError``)."""
        if not self._executor.wait_idle(timeout):
            raise TimeoutError(f"FakeComfyUI still busy after {timeout} s")

    @property
    def connected_clients(self) -> list[str]:
        """The sids with a registered WebSocket."""
        return [] if self._server is None else list(self._server.sockets)

    # -- model files ---------------------------------------------------------------------------------

    @property
    def models(self) -> dict[str, list[str]]:
        """Model folder -> file names, as ``/models/{folder}`` lists them."""
        return self._registry.snapshot()

    def add_model_file(self, folder: str, filename: str) -> None:
        self._registry.add(folder, filename)

    def remove_model_file(self, folder: str, filename: str) -> None:
        self._registry.remove(folder, filename)

    def replace_model_file(self, filename: str, *, level: float | None = None) -> int:
        """Pretend the file's bytes changed: its ``/view_metadata`` changes, and so do the
        images it draws (``level`` sets a new quantization level). Like real ComfyUI, nodes
        already in the output cache are not invalidated. Returns the new revision."""
        return self._registry.replace(filename, level)

    def set_broken(self, filename: str, broken: bool = True) -> None:
        """Make a model file draw off-prompt images (or stop doing so)."""
        self._registry.set_broken(filename, broken)

    def quantization_level(self, filename: str) -> float:
        return self._registry.level(filename)

    @staticmethod
    def models_for_graphs(graphs: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
        """Folder -> files a server needs for these API graphs (see ``models=``)."""
        return models_for_graphs(graphs)

    # -- outputs ---------------------------------------------------------------------------------------

    @property
    def output_dir(self) -> Path:
        """The directory holding ``output/``, ``temp/`` and ``input/``."""
        return self._files.root

    def read_file(self, filename: str, subfolder: str = "", type: str = "output") -> bytes:
        """The bytes of a file the fake wrote (what ``/view`` serves, uncorrupted)."""
        base = self._files.directory(type)
        if base is None:
            raise ValueError(f"unknown type {type!r}")
        return (base / subfolder / filename).read_bytes()
