"""The protocol's events mapped to one prompt's state: written once, for both ways to learn it.

A prompt's fate arrives either live, as WebSocket frames, or afterwards, as the
``status.messages`` and ``outputs`` of its ``/history`` entry. Both carry the same event
names (``tests/transcripts/PROTOCOL.md`` §5), so one function, :func:`record_event`, turns
either into a :class:`_PromptTracker`'s state, and one, :func:`settle`, turns a finished
tracker into its outcome: a :class:`FinishedPrompt` or the error its waiters get.

Protocol facts relied on: a prompt is finished when ``executing`` arrives with
``node: null`` (§5.1); the server writes history before that frame but sends
``execution_success`` before writing history, so that frame is not a safe signal.

Pure and lock-free: the client calls these with its condition variable held.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ComfyUIError, GenerationFailedError, GenerationInterruptedError
from ..redaction import sanitize_server_text
from ._types import FinishedPrompt, ImageRef, Progress

__all__ = [
    "JOB_EVENTS",
    "failure_hint",
    "images_of",
    "progress_of",
    "record_event",
    "record_live_event",
    "settle",
    "settle_from_history",
]

#: The frames that change a prompt's state (``progress`` only feeds listeners).
JOB_EVENTS = frozenset(
    {
        "execution_start",
        "execution_cached",
        "executing",
        "executed",
        "execution_success",
        "execution_error",
        "execution_interrupted",
    }
)


@dataclass(eq=False)
class _PromptTracker:
    """One prompt the client follows, from submit to its outcome (guarded by the client's lock)."""

    prompt_id: str
    graph: dict[str, Any] | None
    output_node: str | None
    submitted_at: float
    owned: bool = True  # submitted by this client (only those are ever cancelled)
    accepted: bool = False  # the server has it (POST answered, or found on the server)
    seen_on_ws: bool = False
    started_at: float | None = None  # local monotonic time the run started
    start_ts: float | None = None  # server ms timestamps
    success_ts: float | None = None
    cached_nodes: tuple[str, ...] = ()
    saw_cached: bool = False
    ran_nodes: set[str] = field(default_factory=set)
    current_node: str | None = None
    outputs: dict[str, tuple[ImageRef, ...]] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    interrupted: dict[str, Any] | None = None
    finished_ws: bool = False  # executing(null) seen
    gap: bool = False  # the socket dropped while this prompt was in flight
    deleted: bool = False  # this client asked the server to delete it from the queue
    confirm_needed: bool = False  # ask the server (history/queue) at the next chance
    next_poll: float = 0.0
    next_confirm: float = 0.0
    finished: FinishedPrompt | None = None
    failure: Callable[[], ComfyUIError] | None = None
    body: dict[str, Any] | None = None  # the POST /prompt body, to queue a lost prompt again
    resubmits: int = 0  # times it was queued again after the server lost it
    best_position: int | None = None  # its lowest place in the pending queue seen so far
    moved_at: float = 0.0  # when it last moved up the queue (or was queued)
    check_error: str = ""  # why the last check with the server failed ("" if it did not)

    def reset_for_resubmit(self, now: float) -> None:
        """Forget a lost run's events before the prompt is queued again."""
        self.resubmits += 1
        self.accepted = False
        self.seen_on_ws = False
        self.started_at = self.start_ts = self.success_ts = None
        self.cached_nodes = ()
        self.saw_cached = False
        self.ran_nodes = set()
        self.current_node = None
        self.outputs = {}
        self.error = self.interrupted = None
        self.finished_ws = self.gap = self.confirm_needed = False
        self.best_position = None
        self.moved_at = now

    @property
    def done(self) -> bool:
        return self.finished is not None or self.failure is not None


def number(value: object) -> float | None:
    """A JSON number as float; None for anything else (booleans included)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def images_of(ui: object) -> tuple[ImageRef, ...]:
    """The images an output node reported (``{"images": [{filename, subfolder, type}]}``)."""
    if not isinstance(ui, Mapping):
        return ()
    refs = []
    for item in ui.get("images") or ():
        if isinstance(item, Mapping) and isinstance(item.get("filename"), str):
            refs.append(
                ImageRef(
                    item["filename"],
                    str(item.get("subfolder") or ""),
                    str(item.get("type") or "output"),
                )
            )
    return tuple(refs)


def _record_output(tracker: _PromptTracker, node: object, ui: object) -> None:
    images = images_of(ui)
    if images:
        tracker.outputs[str(node)] = images


def record_event(
    tracker: _PromptTracker, kind: str, data: Mapping[str, Any], *, live: bool
) -> None:
    """Apply one event to ``tracker``: a WebSocket frame (``live``) or a history message."""
    if kind == "execution_start":
        if live:  # the local clock of a run starts when the frame arrives
            tracker.started_at = time.monotonic()
        tracker.start_ts = number(data.get("timestamp"))
    elif kind == "execution_cached":
        tracker.saw_cached = True
        tracker.cached_nodes = tuple(str(n) for n in data.get("nodes") or ())
    elif kind == "executing":
        node = data.get("node")
        if node is None:
            tracker.finished_ws = True
        else:
            tracker.ran_nodes.add(str(node))
            tracker.current_node = str(node)
    elif kind == "executed":
        node, output = data.get("node"), data.get("output")
        if node is not None:
            _record_output(tracker, node, output)
    elif kind == "execution_success":
        tracker.success_ts = number(data.get("timestamp"))
    elif kind == "execution_error":
        tracker.error = dict(data)
    elif kind == "execution_interrupted":
        tracker.interrupted = dict(data)


def record_live_event(
    tracker: _PromptTracker, kind: str, data: Mapping[str, Any], *, host: str
) -> bool:
    """Apply a WebSocket frame; True when it finished the prompt (wake its waiters).

    A prompt whose frames may have been missed (the socket dropped, or a renamed id) is not
    settled from the socket: it is marked for a history check instead.
    """
    tracker.seen_on_ws = True
    record_event(tracker, kind, data, live=True)
    if kind != "executing" or data.get("node") is not None:
        return False
    if tracker.gap or tracker.confirm_needed:
        tracker.confirm_needed = True  # complete from history: frames were missed
    else:
        settle(tracker, host=host, source="websocket")
    return True


def settle_from_history(tracker: _PromptTracker, entry: Mapping[str, Any], *, host: str) -> None:
    """Replay a finished prompt's ``/history`` entry into ``tracker`` and settle it."""
    if tracker.done:
        return
    status = entry.get("status") if isinstance(entry.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    tracker.finished_ws = True
    for message in status.get("messages") or ():
        if isinstance(message, list) and len(message) == 2 and isinstance(message[1], dict):
            record_event(tracker, str(message[0]), message[1], live=False)
    outputs = entry.get("outputs")
    if isinstance(outputs, Mapping):
        for node, ui in outputs.items():
            _record_output(tracker, node, ui)
    if (
        status.get("status_str") == "error"
        and tracker.error is None
        and tracker.interrupted is None
    ):
        tracker.error = {
            "node_id": "?",
            "node_type": "?",
            "exception_type": "error",
            "exception_message": "the server's history marks the prompt as "
            "failed without saying why",
        }
    settle(tracker, host=host, source="history")


def progress_of(tracker: _PromptTracker | None, data: Mapping[str, Any]) -> Progress | None:
    """A ``progress`` frame as a :class:`Progress`, or None if it is not for a live prompt."""
    node, value, top = data.get("node"), data.get("value"), data.get("max")
    if tracker is None or tracker.done or not isinstance(node, str):
        return None
    if not isinstance(value, (int, float)) or not isinstance(top, (int, float)):
        return None
    cls = ""
    if tracker.graph is not None and isinstance(tracker.graph.get(node), dict):
        cls = str(tracker.graph[node].get("class_type", ""))
    return Progress(tracker.prompt_id, node, int(value), int(top), cls)


_OOM_MARKERS = ("out of memory", "outofmemory", "cudaerrormemoryallocation", "allocation on device")


def failure_hint(node_type: str, exception_type: str, message: str) -> str:
    """The fix for an ``execution_error``: out of memory, a loader, or the traceback."""
    text = f"{exception_type} {message}".lower().replace(" ", "")
    if any(marker.replace(" ", "") in text for marker in _OOM_MARKERS):
        return (
            f"the server ran out of memory in {node_type}: free the GPU (other processes, "
            "--zimage-queue-depth 1), lower the image size, or start ComfyUI with --lowvram"
        )
    if "loader" in node_type.lower():
        return (
            "the server's console has the full traceback; a loader failing usually means "
            "a corrupt or mismatched model file"
        )
    return "the server's console has the full traceback"


def settle(tracker: _PromptTracker, *, host: str, source: str) -> None:
    """Turn a finished prompt's recorded events into its outcome (``source``: how we know)."""
    if tracker.done:
        return
    pid = tracker.prompt_id
    if tracker.error is not None:
        err = tracker.error
        node_id = sanitize_server_text(err.get("node_id", "?"), 40)
        node_type = sanitize_server_text(err.get("node_type", "?"), 80)
        etype = sanitize_server_text(err.get("exception_type", "Exception"), 120)
        emsg = sanitize_server_text(err.get("exception_message", ""), 1000).strip()
        trace = [
            sanitize_server_text(t, 300)
            for t in err.get("traceback") or ()
            if str(t).lstrip().startswith("File")
        ]
        where = f"\n  last frames: {' | '.join(trace[-2:])}" if trace else ""
        hint = failure_hint(node_type, etype, emsg)

        def failed() -> ComfyUIError:
            return GenerationFailedError(
                f"ComfyUI at {host} failed prompt {pid} in node {node_id} ({node_type}): "
                f"{etype}: {emsg}{where}",
                host=host,
                node_id=node_id,
                node_type=node_type,
                exception_type=etype,
                hint=hint,
            )

        tracker.failure = failed
    elif tracker.interrupted is not None:
        info = tracker.interrupted
        node_id = sanitize_server_text(info.get("node_id", "?"), 40)
        node_type = sanitize_server_text(info.get("node_type", "?"), 80)

        def interrupted() -> ComfyUIError:
            return GenerationInterruptedError(
                f"prompt {pid} was interrupted on {host} in node {node_id} ({node_type})",
                host=host,
            )

        tracker.failure = interrupted
    else:
        server_seconds = None
        if tracker.start_ts is not None and tracker.success_ts is not None:
            server_seconds = max(0.0, (tracker.success_ts - tracker.start_ts) / 1000.0)
        if source == "websocket" and not tracker.gap:
            fully = tracker.saw_cached and not tracker.ran_nodes
        else:
            fully = bool(tracker.graph) and set(tracker.graph or ()) <= set(tracker.cached_nodes)
        tracker.finished = FinishedPrompt(
            prompt_id=pid,
            outputs=dict(tracker.outputs),
            cached_nodes=tracker.cached_nodes,
            server_seconds=server_seconds,
            fully_cached=fully,
            source=source,
        )
