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

from ..errors import (
    ComfyUIError,
    ComfyUIHTTPError,
    ComfyUIUnreachableError,
    GenerationTimeoutError,
)
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

#: Frames that mean a prompt started or ended: the queue moved.
_QUEUE_MOVES = frozenset(
    {"execution_start", "execution_success", "execution_error", "execution_interrupted"}
)


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
        """One frame from the reader thread: quick, and under the lock only for state.

        Only a prompt starting or ending counts as the queue moving; ``status`` and
        ``progress`` frames never extend a deadline.
        """
        kind, data = message.get("type"), message.get("data")
        if not isinstance(data, dict):
            return
        pid = data.get("prompt_id")
        if not isinstance(pid, str):
            return
        if kind in _QUEUE_MOVES or (kind == "executing" and data.get("node") is None):
            self._last_activity = time.monotonic()
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
        """Ask the server about ``job`` (history; with ``full`` also the queue). Not locked.

        A prompt the server lost (neither queued nor in its history) is queued again, up to
        ``resubmits`` times; a check that fails (the server restarting, a 5xx) is repeated
        at the next interval, within the prompt's deadline and the outage budget.
        """
        pid = job.prompt_id
        with self._cond:
            job.confirm_needed = False
        try:
            lost = self._read_state(job, full=full)
        except (ComfyUIUnreachableError, ComfyUIHTTPError) as exc:
            if self._http.gone or self._closed:
                raise
            log.info("checking prompt %s on %s failed: %s", pid, self.host, exc.message)
            with self._cond:
                job.check_error = exc.message
                self._schedule(job, full=True)
            return
        if lost:
            self._lost(job)

    def _read_state(self, job: _PromptTracker, *, full: bool) -> bool:
        """One look at the server; True when the prompt is confirmed lost."""
        pid = job.prompt_id
        entry = self._history_entry(pid)
        if entry is None and full:
            running, pending = self.queue()
            if pid in running:
                with self._cond:
                    if job.started_at is None:
                        job.started_at = time.monotonic()
            elif pid in pending:
                position = pending.index(pid)
                with self._cond:
                    if job.best_position is None or position < job.best_position:
                        job.best_position = position
                        job.moved_at = time.monotonic()
            elif job.accepted:
                # Finished between the two reads (history is written before the prompt
                # leaves the queue), or gone: deleted, or lost in a restart.
                entry = self._history_entry(pid)
                if entry is None:
                    return True
        with self._cond:
            job.check_error = ""
            if entry is not None:
                settle_from_history(job, entry, host=self.host)
                self._cond.notify_all()
            else:
                self._schedule(job, full=full)
        return False

    def _schedule(self, job: _PromptTracker, *, full: bool) -> None:
        now = time.monotonic()
        job.next_poll = now + self._timeouts.poll_interval
        if full:
            job.next_confirm = now + self._timeouts.confirm_interval

    def _lost(self, job: _PromptTracker) -> None:
        """The server no longer knows ``job``: queue it again after a restart, or settle it.

        A restart is known by its traces: the WebSocket dropped while the prompt was in
        flight, or the server refused connections for a while. Without them, someone
        deleted the prompt (or cleared the queue) on purpose, and it is not run again.
        """
        pid, host = job.prompt_id, self.host
        restarted = job.gap or self._http.outages > 0
        if job.deleted:
            why, hint = "this client deleted it from the queue", None
        elif not restarted:
            why = (
                "it is neither queued nor in the server's history: someone deleted it "
                "from the queue or cleared the server's history"
            )
            hint = "another client or a person removed it; rerun the case"
        else:
            hint = (
                "the server restarted during the run (a crash, an out-of-memory kill or a "
                "redeploy): check its console, then rerun"
            )
            if job.owned and job.body is not None and job.resubmits < self._timeouts.resubmits:
                log.warning("prompt %s was lost in a restart of %s; queueing it again", pid, host)
                with self._cond:
                    job.reset_for_resubmit(time.monotonic())
                try:
                    self._requeue(job)
                except ComfyUIError as exc:
                    why = f"the server restarted and lost it, and it could not be queued again: {exc.message}"
                else:
                    with self._cond:
                        self._schedule(job, full=True)
                    return
            else:
                times = f" ({job.resubmits + 1} times)" if job.resubmits else ""
                why = f"the server restarted and lost it{times}"
        with self._cond:
            if not job.done:
                job.failure = self._cancelled(pid, why, hint=hint)
            self._cond.notify_all()

    # -- waiting ---------------------------------------------------------------------------

    def _deadline(self, job: _PromptTracker, wait_start: float, limit: float) -> float:
        """Running: ``limit`` after it started. Queued: ``limit`` after the queue last moved
        (a prompt of this client started or ended, or this one moved up), never extended
        by ``status`` or ``progress`` frames."""
        if job.started_at is not None:
            return job.started_at + limit
        moved = max(wait_start, job.moved_at)
        if self._ws_live():
            moved = max(moved, self._last_activity)
        return moved + limit

    def wait(self, prompt_id: str, *, timeout: float | None = None) -> FinishedPrompt:
        """Block until ``prompt_id`` finishes; return its :class:`FinishedPrompt`.

        Raises :class:`GenerationFailedError` (``execution_error``),
        :class:`GenerationInterruptedError` (interrupted, or deleted from the queue), or
        :class:`GenerationTimeoutError`, after deleting/interrupting the prompt on the server.

        ``timeout`` (default: the constructor's) bounds the prompt's run: the clock starts
        when the server starts it (seen on the WebSocket or in ``/queue``). While it waits
        in the queue, it gives up when the queue has not moved for ``timeout`` seconds: no
        prompt of this client started or ended, and this one did not move up in ``/queue``
        (without a WebSocket only the latter counts). ``status`` and ``progress`` frames never extend either clock. A prompt the
        server lost (a restart) is queued again; a server that refuses connections is
        waited for up to the outage budget. Any number of threads may wait on different
        prompts at once.
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

    def _finished_on_server(self, job: _PromptTracker) -> bool:
        """A last look at ``/history`` (bounded by the shutdown deadline): True, and the
        prompt settled, when the server finished it after all (its frames were missed)."""
        deadline = time.monotonic() + self._timeouts.shutdown
        try:
            entry = self._history_entry(job.prompt_id, deadline=deadline)
        except ComfyUIError:
            return False
        if entry is None:
            return False
        with self._cond:
            settle_from_history(job, entry, host=self.host)
            self._cond.notify_all()
        return True

    def _time_out(self, job: _PromptTracker, limit: float) -> None:
        """Settle ``job`` as timed out (before the interrupt's own frames can settle it as
        interrupted), then remove it from the server; raises unless it finished after all.

        The message says what the prompt was doing and what was done about it: a queued
        prompt is deleted from the queue, a running one interrupted; one that the server
        finished is not a timeout at all.
        """
        pid, host = job.prompt_id, self.host
        if self._finished_on_server(job):
            self._outcome(job)
            return
        notes: list[str] = []
        with self._cond:
            if job.done:
                return
            queued = job.started_at is None
            if queued:
                state = "it was still queued: the queue did not move for that long"
            elif job.current_node is not None:
                cls = ""
                if job.graph and isinstance(job.graph.get(job.current_node), dict):
                    cls = f" ({job.graph[job.current_node].get('class_type')})"
                state = f"it was running node {job.current_node}{cls}"
            else:
                state = "it was running"
            if job.check_error:
                state += f"; the last check with the server failed: {job.check_error}"

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
                try:
                    finished = self._history_entry(
                        pid, deadline=time.monotonic() + self._timeouts.shutdown
                    )
                except ComfyUIError:
                    finished = None
                status = finished.get("status") if finished is not None else None
                if isinstance(status, dict) and status.get("status_str") == "success":
                    notes.append("; it finished on the server just after the deadline")
                elif queued:
                    notes.append("; it was deleted from the server's queue")
                else:
                    notes.append("; it was interrupted on the server")
        self._outcome(job)
