"""The state every part of the client shares, and the server reads they all need.

:class:`ComfyUIClient` is assembled from parts, one responsibility each: submitting
(``_submit``), following prompts to their end (``_waiting``), fetching and verifying
their images (``_results``), stopping them (``_control``)
and the public surface (``_client``). This base declares the state they share (guarded by
one condition variable) and the reads of the server's queue and history they all use.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote

from ..errors import ComfyUIError, ComfyUIProtocolError, GenerationInterruptedError
from ._events import _PromptTracker
from ._timeouts import Timeouts
from ._transport import Transport
from ._types import Progress, ServerInfo
from ._ws import LatestValueRelay, WebSocketListener

__all__: list[str] = []


class _ClientCore:
    """Shared state of one client; see :class:`~._client.ComfyUIClient`."""

    #: The base URL without credentials: what every message names.
    host: str
    client_id: str
    _http: Transport
    _timeouts: Timeouts
    _cond: threading.Condition
    _jobs: dict[str, _PromptTracker]
    _listener: WebSocketListener | None
    _relay: LatestValueRelay[tuple[str, str], Progress]
    _closing: threading.Event
    _closed: bool
    _server: ServerInfo | None
    _last_activity: float

    def connect(self) -> ServerInfo:  # the public client implements it
        raise NotImplementedError

    def _check_open(self) -> None:
        if self._closed:
            raise ComfyUIError(f"the client for {self.host} is closed", host=self.host)

    def _ensure_connected(self) -> None:
        if self._server is None:
            self.connect()

    def _queue_items(
        self, deadline: float | None = None
    ) -> tuple[list[list[Any]], list[list[Any]]]:
        what = "GET /queue"
        reply = self._http.expect_dict(self._http.get_json("/queue", what, deadline=deadline), what)
        running, pending = reply.get("queue_running"), reply.get("queue_pending")
        if not isinstance(running, list) or not isinstance(pending, list):
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered without queue_running/queue_pending lists",
                host=self.host,
            )
        good = [
            item
            for item in (*running, *pending)
            if isinstance(item, list) and len(item) >= 2 and isinstance(item[1], str)
        ]
        run = [item for item in running if item in good]
        pend = [item for item in pending if item in good]
        pend.sort(key=lambda item: item[0] if isinstance(item[0], (int, float)) else 0)
        return run, pend

    def queue(self, deadline: float | None = None) -> tuple[list[str], list[str]]:
        """Prompt ids on the server: (running, pending in run order by ``number``)."""
        running, pending = self._queue_items(deadline)
        return [item[1] for item in running], [item[1] for item in pending]

    def _owned(self, prompt_ids: Iterable[str]) -> list[str]:
        ids = list(dict.fromkeys(prompt_ids))
        with self._cond:
            foreign = [pid for pid in ids if pid not in self._jobs or not self._jobs[pid].owned]
        if foreign:
            raise ValueError(
                f"prompt ids {foreign} were not submitted by this client; "
                "it only ever cancels its own prompts"
            )
        return ids

    def _cancel_on_server(self, prompt_ids: Sequence[str]) -> None:
        """Delete these (owned) prompts if pending, then interrupt whichever of them runs.

        The whole of it ends within ``Timeouts.shutdown`` (a stop must not hang on a
        server that stopped answering).
        """
        ids = list(prompt_ids)
        deadline = time.monotonic() + self._timeouts.shutdown
        for _ in range(3):
            self._http.post("/queue", {"delete": ids}, "POST /queue delete", deadline=deadline)
            running, pending = self.queue(deadline)
            for pid in running:
                if pid in ids:
                    self._http.post(
                        "/interrupt", {"prompt_id": pid}, "POST /interrupt", deadline=deadline
                    )
            if not any(pid in ids for pid in pending):
                return

    def _cancelled(
        self, pid: str, why: str, *, hint: str | None = None
    ) -> Callable[[], ComfyUIError]:
        host = self.host

        def make() -> ComfyUIError:
            return GenerationInterruptedError(
                f"prompt {pid} on {host} did not run: {why}", host=host, hint=hint
            )

        return make

    def _requeue(self, job: _PromptTracker) -> None:  # the submitting part implements it
        raise NotImplementedError

    def _ws_live(self) -> bool:
        return self._listener is not None and self._listener.state == "connected"

    def _history_entry(
        self, prompt_id: str, *, deadline: float | None = None
    ) -> dict[str, Any] | None:
        """The finished prompt's history entry, or None while it is unknown or unfinished."""
        path = f"/history/{quote(prompt_id, safe='')}"
        what = f"GET {path}"
        reply = self._http.expect_dict(self._http.get_json(path, what, deadline=deadline), what)
        entry = reply.get(prompt_id)
        return entry if isinstance(entry, dict) else None
