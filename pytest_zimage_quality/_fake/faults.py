"""Fault injection, armed from the test thread and consumed by the server and its worker.

Every fault is bounded: by a count (``times``, ``None`` meaning until ``clear()``), by time
(``for_seconds``) or by an explicit ``release()``, so a test can script "fail twice, then
succeed" and no fault outlives its test. Run-level faults take a ``when`` predicate on the
queued prompt (``RunInfo``: its texts, seeds, model files and the SaveImage filename prefix,
which names the plugin's case); request-level faults take one on the ``RecordedRequest``.
Predicates run under the controller's lock: they must not call back into it.

All methods are thread-safe; the server's HTTP handlers and the prompt worker take faults as
they reach the matching point. ``docs/fixtures.md`` has the table of every fault.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .hostile import CONTROL_TEXT, OOM_TIPS, cuda_oom_message

if TYPE_CHECKING:
    from .log import RecordedRequest

__all__ = [
    "ExecutionFailure",
    "Faults",
    "HTTPFault",
    "ImageFault",
    "RunInfo",
    "ServerHooks",
    "ServerMode",
    "SystemReport",
    "ViewFault",
]

CorruptMode = Literal["truncate", "garbage"]
ViewMode = Literal["truncate", "garbage", "slow", "trickle", "huge"]
ServerMode = Literal["serving", "refusing", "silent"]
ImageFaultKind = Literal["size", "bomb", "same", "filename"]
RunPredicate = Callable[["RunInfo"], bool]
RequestPredicate = Callable[["RecordedRequest"], bool]

_GIB = 1 << 30


@dataclass(frozen=True)
class RunInfo:
    """What a run-matching predicate sees about a queued prompt."""

    prompt_id: str
    number: float
    graph: dict[str, Any]
    client_id: str | None
    #: every loader file the graph names (UNETLoader.unet_name, CLIPLoader.clip_name, ...)
    model_files: tuple[str, ...]
    #: every CLIPTextEncode text in the graph
    prompt_texts: tuple[str, ...]
    #: every SaveImage/PreviewImage ``filename_prefix`` (the plugin's per-case prefix)
    filename_prefixes: tuple[str, ...] = ()
    #: every sampler seed (KSampler ``seed``, KSamplerAdvanced ``noise_seed``)
    seeds: tuple[int, ...] = ()


@dataclass(frozen=True)
class ExecutionFailure:
    """An ``execution_error`` to raise in one node of a run.

    The message sent is ``f"{message}\\n{tips}"``, as ComfyUI's ``execution.py`` formats it;
    ``unload_models`` unloads every model afterwards, as ComfyUI does after an OOM."""

    node_id: str | None = None
    node_type: str | None = None
    exception_type: str = "RuntimeError"
    message: str = "simulated failure injected by FakeComfyUI.faults"
    tips: str = ""
    unload_models: bool = False


@dataclass
class HTTPFault:
    """A stall, a hang and/or an error status for requests to one route."""

    route: str
    method: str | None
    status: int | None
    body: str
    stall: float
    remaining: int | None
    when: RequestPredicate | None = None
    #: never answer until ``Faults.release()`` (or ``clear()``, or the server stops)
    hang: bool = False
    #: the error body repeats the request's headers (as a debugging proxy might)
    echo_headers: bool = False
    released: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class ViewFault:
    """What ``/view`` does instead of serving the file.

    ``truncate``/``garbage``: broken bytes; ``slow``: the body spread over ``seconds``;
    ``trickle``: ``chunk`` bytes every ``seconds``; ``huge``: the PNG padded with zeros to
    ``size`` bytes, streamed."""

    mode: ViewMode
    seconds: float = 0.0
    chunk: int = 1
    size: int = 0


@dataclass(frozen=True)
class ImageFault:
    """What SaveImage writes instead of the rendered image (history names that file)."""

    kind: ImageFaultKind
    width: int = 0
    height: int = 0
    prefix: str = ""
    #: ``same``: the PNG every later image repeats, filled by the first one
    memo: dict[str, bytes] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SystemReport:
    """Overrides of what ``/system_stats`` reports (None: the fake's own value)."""

    device_name: str | None = None
    comfyui_version: str | None = None
    pytorch_version: str | None = None
    vram_total: int | None = None


class ServerHooks(Protocol):
    """What the running server lets the controller do (set by ``FakeServer.start``)."""

    def set_mode(self, mode: ServerMode) -> None:
        """Serve, refuse connections, or accept them and stay silent."""

    def lose_state(self) -> None:
        """Forget the queue, the running prompt, history, node cache and loaded models."""


@dataclass
class _Armed:
    value: Any
    when: Callable[[Any], bool] | None
    remaining: int | None
    until: float | None

    def usable(self, now: float) -> bool:
        if self.until is not None and now >= self.until:
            return False
        return self.remaining is None or self.remaining > 0


def _canonical(route: str) -> str:
    route = route if route.startswith("/") else f"/{route}"
    if route == "/api" or route.startswith("/api/"):
        stripped = route[4:] or "/"
        # /api/jobs exists only with the prefix; keep it whole.
        return route if stripped.startswith("/jobs") else stripped
    return route


def _run_matcher(
    when: RunPredicate | None, model_file: str | None, prompt_contains: str | None
) -> RunPredicate | None:
    if model_file is None and prompt_contains is None:
        return when

    def matches(run: RunInfo) -> bool:
        if when is not None and not when(run):
            return False
        if model_file is not None and model_file not in run.model_files:
            return False
        return prompt_contains is None or any(prompt_contains in t for t in run.prompt_texts)

    return matches


def _filename_matcher(contains: str | None) -> Callable[[Any], bool] | None:
    if contains is None:
        return None
    return lambda filename: contains in filename


class Faults:
    """Faults to inject, e.g. ``fake.faults.http_error("/prompt", 503, times=2)``."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._http: list[HTTPFault] = []
        self._armed: dict[str, list[_Armed]] = {}
        self._mode: ServerMode = "serving"
        self._mode_generation = 0
        self._applied_generation = 0  # the last switch the server has finished applying
        self._timers: list[threading.Timer] = []
        self._hooks: ServerHooks | None = None
        self._report = SystemReport()
        self._restarts = 0

    # -- bookkeeping ------------------------------------------------------------------------

    def _arm(
        self,
        kind: str,
        value: Any,
        when: Callable[[Any], bool] | None,
        times: int | None,
        for_seconds: float | None = None,
    ) -> None:
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for until clear()), not {times}")
        until = None if for_seconds is None else time.monotonic() + for_seconds
        with self._lock:
            self._armed.setdefault(kind, []).append(_Armed(value, when, times, until))

    def _take(self, kind: str, subject: Any) -> Any:
        """The first usable armed value of ``kind`` matching ``subject`` (one use consumed)."""
        now = time.monotonic()
        with self._lock:
            for armed in self._armed.get(kind, []):
                if not armed.usable(now):
                    continue
                if armed.when is not None and not armed.when(subject):
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                return armed.value
        return None

    def _active(self, kind: str, subject: Any) -> Any:
        """Like ``_take`` without consuming a use (for faults bounded by time or release)."""
        now = time.monotonic()
        with self._lock:
            for armed in self._armed.get(kind, []):
                if armed.usable(now) and (armed.when is None or armed.when(subject)):
                    return armed.value
        return None

    # -- connection level ------------------------------------------------------------------

    @property
    def mode(self) -> ServerMode:
        """``serving``, ``refusing`` (connections refused) or ``silent`` (accepted, unanswered)."""
        with self._lock:
            return self._mode

    @property
    def refusing(self) -> bool:
        with self._lock:
            return self._mode == "refusing"

    @property
    def restarts(self) -> int:
        """How many simulated restarts have happened."""
        with self._lock:
            return self._restarts

    def refuse_connections(self, *, for_seconds: float | None = None) -> None:
        """Close the listening socket (new connections get ECONNREFUSED) and drop open ones,
        WebSockets included; with ``for_seconds``, listen again after that downtime. The
        queue keeps running, as when a proxy in front of the server goes away."""
        self._switch("refusing", for_seconds)

    def go_silent(self, *, for_seconds: float | None = None) -> None:
        """Replace the HTTP server by a raw TCP listener on the same port that accepts
        connections, reads what is sent and never answers a byte (open connections and
        WebSockets are dropped first). With ``for_seconds``, serve again after that."""
        self._switch("silent", for_seconds)

    def restore_connections(self) -> None:
        """Serve HTTP again on the same port (after refusing or going silent)."""
        self._switch("serving", None)

    def restart(
        self,
        *,
        downtime: float = 0.0,
        when: RunPredicate | None = None,
        times: int = 1,
    ) -> None:
        """Simulate a ComfyUI restart: connections and WebSockets drop, the port refuses
        connections for ``downtime`` seconds, and the queue (pending and running prompts),
        history, node cache, loaded models and the queue number are lost, as a real
        restart loses them (output files stay on disk). Without ``when`` it happens now
        (the call returns at once; the port listens again after ``downtime``). With
        ``when``, it happens as each of the next ``times`` matching prompts starts running."""
        if when is not None:
            self._arm("restart", downtime, when, times)
            return
        self.restart_now(downtime)

    def restart_now(self, downtime: float) -> None:
        """Perform a restart (called by ``restart()`` and by the worker for armed ones)."""
        with self._lock:
            hooks = self._hooks
            self._restarts += 1
        if hooks is None:
            raise RuntimeError("restart() needs a started FakeComfyUI")
        self._switch("refusing", None)
        hooks.lose_state()
        if downtime > 0:
            self._switch("refusing", downtime)
        else:
            self._switch("serving", None)

    def take_restart(self, run: RunInfo) -> float | None:
        value = self._take("restart", run)
        return None if value is None else float(value)

    def wait_serving(self, timeout: float = 10.0) -> bool:
        """Block until the fake serves HTTP again (after a timed downtime); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._serving_now():
                return True
            time.sleep(0.01)
        return self._serving_now()

    def _switch(self, mode: ServerMode, for_seconds: float | None) -> None:
        with self._lock:
            self._mode = mode
            self._mode_generation += 1
            generation = self._mode_generation
            hooks = self._hooks
            if for_seconds is not None:
                timer = threading.Timer(for_seconds, self._timed_restore, (generation,))
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
        if hooks is not None:
            hooks.set_mode(mode)
        with self._lock:
            self._applied_generation = max(self._applied_generation, generation)

    def _serving_now(self) -> bool:
        """Serving, and the server has finished switching to it (listening again)."""
        with self._lock:
            return self._mode == "serving" and self._applied_generation >= self._mode_generation

    def _timed_restore(self, generation: int) -> None:
        with self._lock:
            if generation != self._mode_generation:  # a later switch takes precedence
                return
        self._switch("serving", None)

    # -- HTTP ---------------------------------------------------------------------------------

    def http_error(
        self,
        route: str,
        status: int = 500,
        *,
        times: int | None = 1,
        method: str | None = None,
        body: str = "",
        when: RequestPredicate | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``route`` (e.g. ``"/prompt"``, ``"*"``)
        with ``status`` instead of handling them. ``/api``-prefixed paths match too;
        ``when`` narrows it to requests it accepts (it sees the ``RecordedRequest``)."""
        self._add_http(HTTPFault(route, method, status, body, 0.0, times, when))

    def echo_headers_error(
        self,
        route: str = "*",
        status: int = 502,
        *,
        times: int | None = 1,
        method: str | None = None,
        when: RequestPredicate | None = None,
    ) -> None:
        """Answer with ``status`` and a text body that repeats every request header verbatim
        (``Authorization`` included), as a misconfigured proxy's error page does."""
        fault = HTTPFault(route, method, status, "", 0.0, times, when, echo_headers=True)
        self._add_http(fault)

    def control_characters_error(
        self,
        route: str = "*",
        status: int = 500,
        *,
        times: int | None = 1,
        method: str | None = None,
        when: RequestPredicate | None = None,
    ) -> None:
        """Answer with ``status`` and a body full of ANSI escapes and control characters
        (``CONTROL_TEXT``: colours, clear screen, an OSC title, CR, BS, BEL, NUL, C1 CSI and a
        bidi override). ``fail_runs(message=CONTROL_TEXT)`` puts it in an execution error."""
        self._add_http(HTTPFault(route, method, status, CONTROL_TEXT, 0.0, times, when))

    def stall(
        self,
        route: str,
        seconds: float,
        *,
        times: int | None = 1,
        method: str | None = None,
        when: RequestPredicate | None = None,
    ) -> None:
        """Delay the next ``times`` requests to ``route`` by ``seconds`` before handling."""
        self._add_http(HTTPFault(route, method, None, "", seconds, times, when))

    def hang(
        self,
        route: str,
        *,
        times: int | None = 1,
        method: str | None = None,
        when: RequestPredicate | None = None,
    ) -> None:
        """Never answer the next ``times`` requests to ``route`` (the connection stays open,
        the request was read) until ``release()``, ``clear()`` or the fake stops; released
        requests are then handled normally."""
        self._add_http(HTTPFault(route, method, None, "", 0.0, times, when, hang=True))

    def release(self) -> None:
        """Let every hung request through and end every ``hold_queue``."""
        with self._lock:
            for fault in self._http:
                fault.released.set()
            self._armed.pop("hold", None)

    def _add_http(self, fault: HTTPFault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError(f"times must be at least 1 (or None), not {fault.remaining}")
        fault.route = "*" if fault.route == "*" else _canonical(fault.route)
        fault.method = fault.method.upper() if fault.method else None
        with self._lock:
            self._http.append(fault)

    def take_http(
        self, method: str, template: str, path: str, request: RecordedRequest | None = None
    ) -> HTTPFault | None:
        """The fault for this request, if any (consumes one of its ``times``)."""
        candidates = {_canonical(template), _canonical(path)}
        with self._lock:
            for fault in self._http:
                if fault.remaining is not None and fault.remaining <= 0:
                    continue
                if fault.method is not None and fault.method != method.upper():
                    continue
                if fault.route != "*" and fault.route not in candidates:
                    continue
                if fault.when is not None and (request is None or not fault.when(request)):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    # -- generation and the WebSocket ----------------------------------------------------------

    def stall_generation(
        self, seconds: float, *, times: int | None = 1, when: RunPredicate | None = None
    ) -> None:
        """Make the next ``times`` matching sampler runs take ``seconds`` longer
        (interruptible; progress frames keep coming)."""
        self._arm("generation_stall", seconds, when, times)

    def take_generation_stall(self, run: RunInfo | None = None) -> float:
        value = self._take("generation_stall", run)
        return 0.0 if value is None else float(value)

    def drop_websocket(
        self, *, after_frames: int = 0, times: int | None = 1, when: RunPredicate | None = None
    ) -> None:
        """Abort the WebSocket of the next matching run's client after ``after_frames`` of that
        run's frames (counted from ``execution_start``) have been sent to it."""
        self._arm("ws_drop", after_frames, when, times)

    def take_ws_drop(self, run: RunInfo | None = None) -> int | None:
        value = self._take("ws_drop", run)
        return None if value is None else int(value)

    def websocket_bomb(
        self,
        *,
        inflated_size: int = 2 * _GIB,
        times: int | None = 1,
        when: RunPredicate | None = None,
    ) -> None:
        """When the next matching run starts, send its client one text frame and close the
        socket. If the client negotiated permessage-deflate, the frame is about
        ``inflated_size / 1030`` bytes (2 MB for 2 GiB) of deflate data that inflates to
        ``inflated_size`` (rounded up to 16 MiB); otherwise it is a plain 2 MB text frame."""
        self._arm("ws_bomb", inflated_size, when, times)

    def take_ws_bomb(self, run: RunInfo) -> int | None:
        value = self._take("ws_bomb", run)
        return None if value is None else int(value)

    def hold_queue(
        self,
        *,
        when: RunPredicate | None = None,
        for_seconds: float | None = None,
        status_every: float = 0.5,
    ) -> None:
        """Keep the prompt at the head of the queue pending (the worker takes nothing while a
        matching prompt is next) and broadcast a ``status`` frame every ``status_every`` s
        meanwhile, so only a client-side deadline ends the wait. Lasts until ``release()``,
        ``clear()`` or ``for_seconds``."""
        if status_every <= 0:
            raise ValueError("status_every must be positive")
        self._arm("hold", status_every, when, None, for_seconds)

    def holding(self, run: RunInfo) -> float | None:
        """The status interval if ``run`` (the head of the queue) is held, else None."""
        value = self._active("hold", run)
        return None if value is None else float(value)

    # -- execution errors -----------------------------------------------------------------------

    def fail_next_run(
        self,
        *,
        node_id: str | None = None,
        node_type: str | None = None,
        exception_type: str = "RuntimeError",
        message: str = "simulated failure injected by FakeComfyUI.faults",
        times: int = 1,
    ) -> None:
        """Raise ``execution_error`` in the next ``times`` runs. The failing node is
        ``node_id``, else the first node of class ``node_type``, else the KSampler, else
        the first node that runs."""
        self.fail_runs(
            None,
            node_id=node_id,
            node_type=node_type,
            exception_type=exception_type,
            message=message,
            times=times,
        )

    def fail_runs(
        self,
        predicate: RunPredicate | None = None,
        *,
        model_file: str | None = None,
        prompt_contains: str | None = None,
        node_id: str | None = None,
        node_type: str | None = None,
        exception_type: str = "RuntimeError",
        message: str = "simulated failure injected by FakeComfyUI.faults",
        tips: str = "",
        unload_models: bool = False,
        times: int | None = None,
    ) -> None:
        """Raise ``execution_error`` in every run that matches (all given conditions):
        ``predicate(RunInfo)``, a loader naming ``model_file``, a CLIPTextEncode text
        containing ``prompt_contains``. ``times=None`` keeps failing until ``clear()``."""
        failure = ExecutionFailure(node_id, node_type, exception_type, message, tips, unload_models)
        self._arm("fail", failure, _run_matcher(predicate, model_file, prompt_contains), times)

    def out_of_memory(
        self,
        when: RunPredicate | None = None,
        *,
        node_type: str = "KSampler",
        times: int | None = 1,
        allocate_gib: float = 2.0,
        model_file: str | None = None,
        prompt_contains: str | None = None,
    ) -> None:
        """A CUDA out-of-memory error in ``node_type``, exactly as ComfyUI reports a
        ``torch.OutOfMemoryError``: ``exception_type`` ``torch.OutOfMemoryError``, the
        allocator's message followed by ComfyUI's OOM tips, and every model unloaded."""
        self.fail_runs(
            when,
            model_file=model_file,
            prompt_contains=prompt_contains,
            node_type=node_type,
            exception_type="torch.OutOfMemoryError",
            message=cuda_oom_message(allocate_gib),
            tips=OOM_TIPS,
            unload_models=True,
            times=times,
        )

    def take_execution_failure(self, run: RunInfo) -> ExecutionFailure | None:
        value = self._take("fail", run)
        return value if isinstance(value, ExecutionFailure) else None

    # -- images ---------------------------------------------------------------------------------

    def wrong_image_size(
        self,
        width: int,
        height: int,
        *,
        times: int | None = 1,
        when: RunPredicate | None = None,
    ) -> None:
        """Matching runs save their image resized to ``width`` x ``height``."""
        self._arm("image", ImageFault("size", width, height), when, times)

    def tiny_image(self, *, times: int | None = 1, when: RunPredicate | None = None) -> None:
        """Matching runs save a 1x1 image."""
        self.wrong_image_size(1, 1, times=times, when=when)

    def pixel_bomb(
        self, *, side: int = 13000, times: int | None = 1, when: RunPredicate | None = None
    ) -> None:
        """Matching runs save a valid, tiny 1-bit PNG of ``side`` x ``side`` pixels: 169
        Mpx for 13000, under Pillow's error threshold (it only warns), about 0.5 GB as RGB."""
        self._arm("image", ImageFault("bomb", side, side), when, times)

    def same_image(self, *, times: int | None = None, when: RunPredicate | None = None) -> None:
        """Every matching run saves the same PNG bytes, without metadata: the first image
        this fault writes, repeated whatever the prompt, seed or size."""
        self._arm("image", ImageFault("same"), when, times)

    def wrong_filename(
        self,
        *,
        prefix: str = "ComfyUI",
        times: int | None = 1,
        when: RunPredicate | None = None,
    ) -> None:
        """Matching runs save under ``prefix`` instead of the graph's ``filename_prefix``, so
        history names a file without the case's prefix (``/view`` serves it)."""
        self._arm("image", ImageFault("filename", prefix=prefix), when, times)

    def take_image_faults(self, run: RunInfo) -> list[ImageFault]:
        """At most one image fault of each kind for this run."""
        taken: dict[str, ImageFault] = {}
        now = time.monotonic()
        with self._lock:
            for armed in self._armed.get("image", []):
                fault: ImageFault = armed.value
                if fault.kind in taken or not armed.usable(now):
                    continue
                if armed.when is not None and not armed.when(run):
                    continue
                if armed.remaining is not None:
                    armed.remaining -= 1
                taken[fault.kind] = fault
        return list(taken.values())

    # -- /view ----------------------------------------------------------------------------------

    def corrupt_view(
        self,
        mode: CorruptMode = "truncate",
        *,
        times: int | None = 1,
        filename_contains: str | None = None,
    ) -> None:
        """Serve broken bytes (200, image/png) for the next ``times`` /view downloads:
        ``truncate`` cuts the PNG in half, ``garbage`` sends random bytes."""
        if mode not in ("truncate", "garbage"):
            raise ValueError(f"mode must be 'truncate' or 'garbage', not {mode!r}")
        self._arm("view", ViewFault(mode), _filename_matcher(filename_contains), times)

    def slow_view(
        self, seconds: float, *, times: int | None = 1, filename_contains: str | None = None
    ) -> None:
        """Send the next ``times`` /view bodies in 16 even pieces spread over ``seconds``
        (headers at once): a slow link, each read well within a per-read timeout."""
        self._arm("view", ViewFault("slow", seconds), _filename_matcher(filename_contains), times)

    def trickle_view(
        self,
        every: float = 5.0,
        *,
        chunk: int = 1,
        times: int | None = 1,
        filename_contains: str | None = None,
    ) -> None:
        """Send the next ``times`` /view bodies ``chunk`` bytes every ``every`` seconds
        (Content-Length announced): a per-read timeout never fires, only a whole-download
        deadline ends it. Ends when the client disconnects or the fake stops."""
        fault = ViewFault("trickle", every, chunk)
        self._arm("view", fault, _filename_matcher(filename_contains), times)

    def huge_view(
        self,
        size: int = 2 * _GIB,
        *,
        times: int | None = 1,
        filename_contains: str | None = None,
    ) -> None:
        """Serve the next ``times`` /view bodies as the real PNG followed by zero padding to
        ``size`` bytes (Content-Length announced), streamed 1 MiB at a time."""
        fault = ViewFault("huge", size=size)
        self._arm("view", fault, _filename_matcher(filename_contains), times)

    def take_view_fault(self, filename: str) -> ViewFault | None:
        value = self._take("view", filename)
        return value if isinstance(value, ViewFault) else None

    def take_view_corruption(self, filename: str) -> CorruptMode | None:
        """Kept for callers of the older API: the corruption mode, if the next fault is one."""
        fault = self.take_view_fault(filename)
        if fault is None or fault.mode not in ("truncate", "garbage"):
            return None
        return "truncate" if fault.mode == "truncate" else "garbage"

    # -- what the server reports ----------------------------------------------------------------

    def report_system(
        self,
        *,
        device_name: str | None = None,
        comfyui_version: str | None = None,
        pytorch_version: str | None = None,
        vram_total: int | None = None,
    ) -> None:
        """Make ``/system_stats`` report another GPU (``devices[0].name``, e.g. ``"cuda:0
        NVIDIA GB10 : cudaMallocAsync"``), ComfyUI version, torch version or VRAM size,
        without changing the protocol the fake speaks. ``clear()`` undoes it."""
        with self._lock:
            self._report = SystemReport(device_name, comfyui_version, pytorch_version, vram_total)

    @property
    def system_report(self) -> SystemReport:
        with self._lock:
            return self._report

    # -- housekeeping ---------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget every armed fault, release hung requests, and serve again if connections
        were refused or the server was silent."""
        with self._lock:
            for fault in self._http:
                fault.released.set()
            self._http.clear()
            self._armed.clear()
            self._report = SystemReport()
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            serving = self._mode == "serving"
        if not serving:
            self.restore_connections()

    def set_hooks(self, hooks: ServerHooks | None) -> None:
        """Called by the server: how to change its listening mode and lose its state."""
        with self._lock:
            self._hooks = hooks
            if hooks is None:
                for fault in self._http:
                    fault.released.set()
                for timer in self._timers:
                    timer.cancel()
                self._timers.clear()
