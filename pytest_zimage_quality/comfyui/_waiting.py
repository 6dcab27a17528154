"""Following prompts to their end: WebSocket frames, history checks, deadlines.

Any thread may wait on any prompt; waits on different prompts proceed in parallel. Each
waiter blocks on the client's one condition variable and does its own HTTP checks, never on
the WebSocket reader thread, which only records events (:mod:`._events`) under the lock.
Without a WebSocket a waiter polls ``/history``; with one it still asks the server every
``confirm_interval`` seconds, to notice a prompt someone deleted from the queue.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..errors import ComfyUIError, GenerationTimeoutError
from ._core import _ClientCore
from ._events import (
    JOB_EVENTS,
    _PromptTracker,
    progress_of,
    record_live_event,
    settle_from_history,
)
from ._types import FinishedPrompt
from ._ws import State

__all__: list[str] = []

log = logging.getLogger("pytest_zimage_quality.comfyui")


class _Waiting(_ClientCore):
    """:meth:`wait` and what feeds it: the WebSocket callbacks and the server checks."""

    def _on_ws_state(self, state: State, why: str) -> None:
        with self._cond:
            for job in self._jobs.values():
                if job.done:
                    continue
                if state == "reconnecting":
                    job.gap = True
                elif state == "connected":
                    job.confirm_needed = True
            self._cond.notify_all()
        log.info("ComfyUI WebSocket at %s: %s (%s)", self.host, state, why)

    def _on_ws_message(self, message: dict[str, Any]) -> None:
        """One frame from the reader thread: quick, and under the lock only for state."""
        self._last_activity = time.monotonic()
        kind, data = message.get("type"), message.get("data")
        if not isinstance(data, dict):
            return
        pid = data.get("prompt_id")
        if not isinstance(pid, str):
            return
        if kind == "progress":
            progress = progress_of(self._jobs.get(pid), data)
            if progress is not None:
                self._relay.post((pid, progress.node), progress)
            return
        if kind not in JOB_EVENTS:
            return
        with self._cond:
            job = self._jobs.get(pid)
            if job is None or job.done:
                return
            if record_live_event(job, str(kind), data, host=self.host):
                self._cond.notify_all()

    def _check_server(self, job: _PromptTracker, *, full: bool) -> None:
        """Ask the server about ``job`` (history; with ``full`` also the queue). Not locked."""
        pid = job.prompt_id
        with self._cond:
            job.confirm_needed = False
        entry = self._history_entry(pid)
        if entry is None and full:
            running, pending = self.queue()
            if pid in running:
                with self._cond:
                    if job.started_at is None:
                        job.started_at = time.monotonic()
            elif pid not in pending and job.accepted:
                # Finished between the two reads (history is written before the prompt
                # leaves the queue), or gone: deleted by someone, or the server restarted.
                entry = self._history_entry(pid)
                if entry is None:
                    with self._cond:
                        if not job.done:
                            job.failure = self._cancelled(
                                pid,
                                "this client deleted it from the queue"
                                if job.deleted
                                else "it is neither queued nor in the server's history "
                                "(deleted from the queue by someone, or the server restarted)",
                            )
                        self._cond.notify_all()
                    return
        if entry is not None:
            with self._cond:
                settle_from_history(job, entry, host=self.host)
                self._cond.notify_all()
            return
        with self._cond:
            now = time.monotonic()
            job.next_poll = now + self._timeouts.poll_interval
            if full:
                job.next_confirm = now + self._timeouts.confirm_interval

    # -- waiting ---------------------------------------------------------------------------

    def _deadline(self, job: _PromptTracker, wait_start: float, limit: float) -> float:
        if job.started_at is not None:
            return job.started_at + limit
        if self._ws_live():
            return max(wait_start, self._last_activity) + limit
        return wait_start + limit

    def wait(self, prompt_id: str, *, timeout: float | None = None) -> FinishedPrompt:
        """Block until ``prompt_id`` finishes; return its :class:`FinishedPrompt`.

        Raises :class:`GenerationFailedError` (``execution_error``),
        :class:`GenerationInterruptedError` (interrupted, or deleted from the queue), or
        :class:`GenerationTimeoutError`, after deleting/interrupting the prompt on the server.

        ``timeout`` (default: the constructor's) bounds the prompt's run: the clock starts
        when the server starts it (seen on the WebSocket or in ``/queue``). While it waits
        in the queue behind other prompts, the client gives up only when the server shows
        no activity for ``timeout`` seconds (or, without a WebSocket, ``timeout`` after this
        call). Any number of threads may wait on different prompts at once.
        """
        limit = self._timeouts.prompt if timeout is None else float(timeout)
        now = time.monotonic()
        with self._cond:
            self._check_open()
            job = self._jobs.get(prompt_id)
            if job is None:  # not submitted here: follow it through the server
                job = _PromptTracker(
                    prompt_id, None, None, submitted_at=now, owned=False, accepted=True
                )
                job.confirm_needed = True
                self._jobs[prompt_id] = job
        if not self._ws_live() and not job.done:
            self._ensure_connected()
        wait_start = time.monotonic()
        while True:
            action = ""
            with self._cond:
                while not job.done:
                    if self._closed:
                        raise ComfyUIError(
                            f"the client for {self.host} was closed while waiting for prompt "
                            f"{prompt_id}",
                            host=self.host,
                        )
                    now = time.monotonic()
                    deadline = self._deadline(job, wait_start, limit)
                    if now >= deadline:
                        action = "timeout"
                        break
                    live = self._ws_live()
                    if job.confirm_needed or now >= job.next_confirm:
                        action = "confirm"
                        break
                    if not live and now >= job.next_poll:
                        action = "poll"
                        break
                    wake = min(deadline, job.next_confirm, job.next_poll if not live else deadline)
                    self._cond.wait(max(0.0, wake - now))
                if job.done:
                    return self._outcome(job)
            if action == "timeout":
                self._time_out(job, limit)  # raises, unless the prompt just finished
                continue
            self._check_server(job, full=action == "confirm")

    def _outcome(self, job: _PromptTracker) -> FinishedPrompt:
        if job.failure is not None:
            raise job.failure()
        assert job.finished is not None
        return job.finished

    def _time_out(self, job: _PromptTracker, limit: float) -> None:
        """Settle ``job`` as timed out (before the interrupt's own frames can settle it as
        interrupted), then remove it from the server; raises unless it finished just now."""
        pid, host = job.prompt_id, self.host
        notes: list[str] = []
        with self._cond:
            if job.done:
                return
            if job.started_at is None:
                state = "it was still queued"
            elif job.current_node is not None:
                cls = ""
                if job.graph and isinstance(job.graph.get(job.current_node), dict):
                    cls = f" ({job.graph[job.current_node].get('class_type')})"
                state = f"it was running node {job.current_node}{cls}"
            else:
                state = "it was running"

            def timed_out() -> ComfyUIError:
                return GenerationTimeoutError(
                    f"prompt {pid} did not finish within {limit:g} s on {host} ({state})"
                    + "".join(notes),
                    host=host,
                )

            job.failure = timed_out
            self._cond.notify_all()
        if job.owned:
            try:
                self._cancel_on_server([pid])
            except ComfyUIError as exc:
                notes.append(f"; removing it from the server failed too: {exc.message}")
            else:
                notes.append("; it was removed from the server's queue")
        self._outcome(job)
