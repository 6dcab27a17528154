"""Submitting a graph: queued exactly once, whatever the network does.

A ``POST /prompt`` that fails without a clear answer may still have queued the prompt, so
before re-sending the client looks for its prompt id in ``/queue`` and ``/history``. A 400
becomes a :class:`WorkflowRejectedError` in the server's words; a 200 whose ``node_errors``
dropped the output node is removed from the queue and refused the same way.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from ..errors import (
    ComfyUIError,
    ComfyUIProtocolError,
    ComfyUIUnreachableError,
    WorkflowRejectedError,
)
from ._core import _ClientCore
from ._events import _PromptTracker
from ._http_errors import excerpt
from ._preflight import rejection
from ._transport import RETRY_STATUSES

__all__: list[str] = []

log = logging.getLogger("pytest_zimage_quality.comfyui")


class _Submitting(_ClientCore):
    """:meth:`submit` and the checks that keep a prompt from being queued twice."""

    def submit(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        output_node: str | None = None,
        extra_pnginfo: Mapping[str, Any] | None = None,
    ) -> str:
        """Queue ``graph`` under this client's id and return its prompt id (ours by default).

        A 400 raises :class:`WorkflowRejectedError` with every node error in the server's
        words. A 200 whose ``node_errors`` drop ``output_node`` (or, without one, any output)
        also raises, after removing the half-accepted prompt from the queue. After a
        transport error the client checks whether its prompt id reached the server
        (``/queue``, ``/history``) before it re-sends, so a graph is never queued twice.
        """
        self._ensure_connected()
        pid = prompt_id or str(uuid.uuid4())
        copy = json.loads(json.dumps(graph))
        body: dict[str, Any] = {"prompt": copy, "client_id": self.client_id, "prompt_id": pid}
        if extra_pnginfo:
            body["extra_data"] = {"extra_pnginfo": dict(extra_pnginfo)}
        with self._cond:
            self._check_open()
            old = self._jobs.get(pid)
            if old is not None and not old.done:
                raise ValueError(f"prompt id {pid} is already in flight on this client")
            job = _PromptTracker(pid, copy, output_node, submitted_at=time.monotonic())
            job.next_confirm = job.submitted_at + self._timeouts.confirm_interval
            job.moved_at = job.submitted_at
            job.body = body
            self._jobs[pid] = job
        try:
            return self._post_prompt(job, body)
        except BaseException:
            with self._cond:
                if not job.accepted and self._jobs.get(pid) is job:
                    del self._jobs[pid]
            raise

    def _requeue(self, job: _PromptTracker) -> None:
        """Queue a prompt the server lost again, with its original body (same prompt id,
        client id and filename prefix)."""
        assert job.body is not None
        self._post_prompt(job, job.body)

    def _post_prompt(self, job: _PromptTracker, body: dict[str, Any]) -> str:
        pid, what = job.prompt_id, "POST /prompt"
        content = json.dumps(body).encode("utf-8")
        attempts = self._timeouts.retries + 1
        attempt = tries = 0
        while True:
            self._check_open()
            failure: httpx.TransportError | httpx.Response
            try:
                response = self._http.post_once("/prompt", content)
            except httpx.TransportError as exc:
                failure = exc
            else:
                if response.status_code not in RETRY_STATUSES:
                    return self._accept(job, response)
                failure = response
            attempt += 1
            if isinstance(failure, httpx.TransportError):
                # refused: the request never reached the server; wait out a restart
                if self._http.wait_out_refusal(failure, attempt - 1):
                    continue
                if not (
                    self._http.retryable(failure) or isinstance(failure, httpx.TimeoutException)
                ):
                    raise self._http.translate(failure, what) from failure
            outputs = self._arrived(job, failure)
            if outputs is not None:
                log.info("prompt %s reached %s despite %s", pid, self.host, failure)
                self._mark_accepted(job, outputs)
                return pid
            tries += 1
            if tries >= attempts:
                break
            self._http.sleep(tries - 1)
        if isinstance(failure, httpx.Response):
            raise self._http.status_error(failure, what)
        raise self._http.translate(failure, what) from failure

    def _arrived(
        self, job: _PromptTracker, failure: httpx.TransportError | httpx.Response
    ) -> list[str] | None:
        """After a failed POST /prompt: did the prompt reach the server anyway?

        A connect error or a 503 means the request was not handled: None at once (503 after
        one check). Otherwise (no reply within ``submit_reply`` seconds, a reset, 502/504
        from a proxy) the server may still be handling it, so the client looks in /queue and
        /history (and at the WebSocket) for up to ``lost_prompt_window`` seconds: a prompt
        whose reply was dropped is found there within a second of being queued.
        """
        if isinstance(failure, (httpx.ConnectError, httpx.ConnectTimeout)):
            return None
        window = (
            0.0
            if isinstance(failure, httpx.Response) and failure.status_code == 503
            else self._timeouts.lost_prompt_window
        )
        deadline = time.monotonic() + window
        delay = max(self._timeouts.backoff, 0.05)
        while True:
            outputs = self._find_on_server(job, failure)
            if outputs is not None:
                return outputs
            now = time.monotonic()
            if now >= deadline or self._closed:
                return None
            self._closing.wait(min(delay, deadline - now))
            delay = min(delay * 2, 1.0)

    def _find_on_server(
        self, job: _PromptTracker, failure: httpx.TransportError | httpx.Response
    ) -> list[str] | None:
        """The prompt's outputs-to-execute if the server has it, else None."""
        with self._cond:
            if job.seen_on_ws:
                return []
        try:
            running, pending = self._queue_items()
            for item in (*running, *pending):
                if item[1] == job.prompt_id:
                    return (
                        [str(x) for x in item[4]]
                        if len(item) > 4 and isinstance(item[4], list)
                        else []
                    )
            entry = self._history_entry(job.prompt_id)
        except ComfyUIError as exc:
            cause = failure if isinstance(failure, httpx.TransportError) else None
            raise ComfyUIUnreachableError(
                f"POST /prompt: the request to {self.host} failed ({failure!s:.120}) and the "
                f"server cannot be asked whether prompt {job.prompt_id} arrived "
                f"({exc.message}); not sending it again",
                host=self.host,
            ) from (cause or exc)
        if entry is None:
            return None
        prompt = entry.get("prompt")
        if isinstance(prompt, list) and len(prompt) > 4 and isinstance(prompt[4], list):
            return [str(x) for x in prompt[4]]
        return []

    def _mark_accepted(self, job: _PromptTracker, outputs: list[str]) -> None:
        if job.output_node and outputs and job.output_node not in outputs:
            self._drop(job)
            raise WorkflowRejectedError(
                f"ComfyUI at {self.host} queued prompt {job.prompt_id} without output node "
                f"{job.output_node} (it runs only {outputs})",
                host=self.host,
            )
        with self._cond:
            job.accepted = True
        if job.failure is not None:  # cancel_all ran while the POST was in flight
            self._drop(job)
            raise job.failure()

    def _drop(self, job: _PromptTracker) -> None:
        """Remove a prompt we will not wait for from the server, and forget it."""
        try:
            self._cancel_on_server([job.prompt_id])
        except ComfyUIError as exc:
            log.warning("could not remove prompt %s from %s: %s", job.prompt_id, self.host, exc)
        with self._cond:
            self._jobs.pop(job.prompt_id, None)

    def _accept(self, job: _PromptTracker, response: httpx.Response) -> str:
        what = "POST /prompt"
        if response.status_code == 400:
            reply = self._http.json_of(response, what)
            if isinstance(reply, dict) and ("error" in reply or "node_errors" in reply):
                raise rejection(reply, job.graph or {}, host=self.host)
            raise self._http.status_error(response, what)
        if response.status_code != 200:
            raise self._http.status_error(response, what)
        reply = self._http.expect_dict(self._http.json_of(response, what), what)
        returned = reply.get("prompt_id")
        if not isinstance(returned, str) or not returned:
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered 200 without a prompt_id: "
                f"{excerpt(json.dumps(reply), 160)}",
                host=self.host,
            )
        with self._cond:
            job.accepted = True
            if returned != job.prompt_id:  # the protocol says: use the returned id
                log.warning(
                    "ComfyUI at %s renamed prompt %s to %s", self.host, job.prompt_id, returned
                )
                self._jobs.pop(job.prompt_id, None)
                job.prompt_id = returned
                job.confirm_needed = True  # frames under the new id may have been missed
                self._jobs[returned] = job
        if job.failure is not None:  # cancel_all ran while the POST was in flight
            self._drop(job)
            raise job.failure()
        node_errors = reply.get("node_errors")
        if isinstance(node_errors, dict) and node_errors:
            dropped = {
                str(out)
                for err in node_errors.values()
                if isinstance(err, dict)
                for out in (err.get("dependent_outputs") or ())
            }
            if job.output_node is None or job.output_node in dropped:
                refused = rejection(
                    {
                        "error": {
                            "type": "prompt_outputs_failed_validation",
                            "message": "some outputs failed validation and were dropped",
                        },
                        "node_errors": node_errors,
                    },
                    job.graph or {},
                    host=self.host,
                )
                self._drop(job)
                raise refused
            log.info(
                "ComfyUI at %s dropped outputs %s of prompt %s",
                self.host,
                sorted(dropped),
                returned,
            )
        return returned
