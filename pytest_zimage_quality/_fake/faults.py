"""Fault injection, armed from the test thread and consumed by the server and its worker.

Every fault is counted (``times``) so a test can script "fail twice, then succeed" and assert
the client's retry behaviour. All methods are thread-safe; the server's HTTP handlers and the
prompt worker take faults as they reach the matching point.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ExecutionFailure", "Faults", "HTTPFault", "RunInfo"]

CorruptMode = Literal["truncate", "garbage"]


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


@dataclass(frozen=True)
class ExecutionFailure:
    """An ``execution_error`` to raise in one node of a run."""

    node_id: str | None = None
    node_type: str | None = None
    exception_type: str = "RuntimeError"
    message: str = "simulated failure injected by FakeComfyUI.faults"


@dataclass
class HTTPFault:
    """A stall and/or an error status for requests to one route."""

    route: str
    method: str | None
    status: int | None
    body: str
    stall: float
    remaining: int


@dataclass
class _RunFault:
    predicate: Callable[[RunInfo], bool]
    failure: ExecutionFailure
    remaining: int | None


@dataclass
class _Counter:
    remaining: int
    value: Any = None
    extra: Any = None


def _canonical(route: str) -> str:
    route = route if route.startswith("/") else f"/{route}"
    if route == "/api" or route.startswith("/api/"):
        stripped = route[4:] or "/"
        # /api/jobs exists only with the prefix; keep it whole.
        return route if stripped.startswith("/jobs") else stripped
    return route


@dataclass
class Faults:
    """Faults to inject, e.g. ``fake.faults.http_error("/prompt", 503, times=2)``."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _http: list[HTTPFault] = field(default_factory=list)
    _generation_stalls: list[_Counter] = field(default_factory=list)
    _ws_drops: list[_Counter] = field(default_factory=list)
    _run_faults: list[_RunFault] = field(default_factory=list)
    _corruptions: list[_Counter] = field(default_factory=list)
    _refusing: bool = False
    _listener: Callable[[bool], None] | None = field(default=None, repr=False)

    # -- connection level ------------------------------------------------------------------

    def refuse_connections(self) -> None:
        """Close the listening socket (new connections get ECONNREFUSED) and drop open ones."""
        with self._lock:
            self._refusing = True
            listener = self._listener
        if listener is not None:
            listener(True)

    def restore_connections(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            self._refusing = False
            listener = self._listener
        if listener is not None:
            listener(False)

    @property
    def refusing(self) -> bool:
        with self._lock:
            return self._refusing

    # -- HTTP ---------------------------------------------------------------------------------

    def http_error(
        self,
        route: str,
        status: int = 500,
        *,
        times: int = 1,
        method: str | None = None,
        body: str = "",
    ) -> None:
        """Answer the next ``times`` requests to ``route`` (e.g. ``"/prompt"``, ``"*"``)
        with ``status`` instead of handling them. ``/api``-prefixed paths match too."""
        self._add_http(route, method, status, body, 0.0, times)

    def stall(
        self, route: str, seconds: float, *, times: int = 1, method: str | None = None
    ) -> None:
        """Delay the next ``times`` requests to ``route`` by ``seconds`` before handling."""
        self._add_http(route, method, None, "", seconds, times)

    def _add_http(
        self,
        route: str,
        method: str | None,
        status: int | None,
        body: str,
        stall: float,
        times: int,
    ) -> None:
        fault = HTTPFault(
            route="*" if route == "*" else _canonical(route),
            method=method.upper() if method else None,
            status=status,
            body=body,
            stall=stall,
            remaining=times,
        )
        with self._lock:
            self._http.append(fault)

    def take_http(self, method: str, template: str, path: str) -> HTTPFault | None:
        """The fault for this request, if any (consumes one of its ``times``)."""
        candidates = {_canonical(template), _canonical(path)}
        with self._lock:
            for fault in self._http:
                if fault.remaining <= 0:
                    continue
                if fault.method is not None and fault.method != method.upper():
                    continue
                if fault.route != "*" and fault.route not in candidates:
                    continue
                fault.remaining -= 1
                return fault
        return None

    # -- generation ---------------------------------------------------------------------------

    def stall_generation(self, seconds: float, *, times: int = 1) -> None:
        """Make the next ``times`` sampler runs take ``seconds`` longer (interruptible)."""
        with self._lock:
            self._generation_stalls.append(_Counter(times, seconds))

    def take_generation_stall(self) -> float:
        with self._lock:
            for counter in self._generation_stalls:
                if counter.remaining > 0:
                    counter.remaining -= 1
                    return float(counter.value)
        return 0.0

    def drop_websocket(self, *, after_frames: int = 0, times: int = 1) -> None:
        """Abort the WebSocket of the next run's client after ``after_frames`` of that run's
        frames (counted from ``execution_start``) have been sent to it."""
        with self._lock:
            self._ws_drops.append(_Counter(times, after_frames))

    def take_ws_drop(self) -> int | None:
        with self._lock:
            for counter in self._ws_drops:
                if counter.remaining > 0:
                    counter.remaining -= 1
                    return int(counter.value)
        return None

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
            lambda _run: True,
            node_id=node_id,
            node_type=node_type,
            exception_type=exception_type,
            message=message,
            times=times,
        )

    def fail_runs(
        self,
        predicate: Callable[[RunInfo], bool] | None = None,
        *,
        model_file: str | None = None,
        prompt_contains: str | None = None,
        node_id: str | None = None,
        node_type: str | None = None,
        exception_type: str = "RuntimeError",
        message: str = "simulated failure injected by FakeComfyUI.faults",
        times: int | None = None,
    ) -> None:
        """Raise ``execution_error`` in every run that matches (all given conditions):
        ``predicate(RunInfo)``, a loader naming ``model_file``, a CLIPTextEncode text
        containing ``prompt_contains``. ``times=None`` keeps failing until ``clear()``."""

        def matches(run: RunInfo) -> bool:
            if predicate is not None and not predicate(run):
                return False
            if model_file is not None and model_file not in run.model_files:
                return False
            return prompt_contains is None or any(prompt_contains in t for t in run.prompt_texts)

        failure = ExecutionFailure(node_id, node_type, exception_type, message)
        with self._lock:
            self._run_faults.append(_RunFault(matches, failure, times))

    def take_execution_failure(self, run: RunInfo) -> ExecutionFailure | None:
        with self._lock:
            faults = list(self._run_faults)
        for fault in faults:
            if fault.remaining is not None and fault.remaining <= 0:
                continue
            if not fault.predicate(run):
                continue
            with self._lock:
                if fault.remaining is not None:
                    if fault.remaining <= 0:
                        continue
                    fault.remaining -= 1
            return fault.failure
        return None

    # -- /view ----------------------------------------------------------------------------------

    def corrupt_view(
        self,
        mode: CorruptMode = "truncate",
        *,
        times: int = 1,
        filename_contains: str | None = None,
    ) -> None:
        """Serve broken bytes (200, image/png) for the next ``times`` /view downloads:
        ``truncate`` cuts the PNG in half, ``garbage`` sends random bytes."""
        if mode not in ("truncate", "garbage"):
            raise ValueError(f"mode must be 'truncate' or 'garbage', not {mode!r}")
        with self._lock:
            self._corruptions.append(_Counter(times, mode, filename_contains))

    def take_view_corruption(self, filename: str) -> CorruptMode | None:
        with self._lock:
            for counter in self._corruptions:
                if counter.remaining <= 0:
                    continue
                if counter.extra is not None and counter.extra not in filename:
                    continue
                counter.remaining -= 1
                mode: CorruptMode = counter.value
                return mode
        return None

    # -- housekeeping ---------------------------------------------------------------------------

    def clear(self) -> None:
        """Forget every armed fault and listen again if connections were refused."""
        with self._lock:
            self._http.clear()
            self._generation_stalls.clear()
            self._ws_drops.clear()
            self._run_faults.clear()
            self._corruptions.clear()
            refusing = self._refusing
        if refusing:
            self.restore_connections()

    def set_listener(self, listener: Callable[[bool], None] | None) -> None:
        """Called by the server: how to open/close its listening socket."""
        with self._lock:
            self._listener = listener
