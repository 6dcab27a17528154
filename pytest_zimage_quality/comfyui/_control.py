"""Stopping prompts: this client's own, and only those.

ComfyUI serves many clients from one queue, so every call here refuses prompt ids this
client did not submit: a stop of this run never deletes or interrupts someone else's work.
"""

from __future__ import annotations

from collections.abc import Iterable

from ._core import _ClientCore

__all__: list[str] = []


class _Control(_ClientCore):
    """Interrupt, delete from the queue, cancel everything, free the server's memory."""

    def interrupt(self, prompt_id: str) -> None:
        """Interrupt ``prompt_id`` if it is the one running (``POST /interrupt`` with its id).

        The targeted interrupt is a no-op on the server for any other prompt, so this never
        stops someone else's job. Only ids this client submitted are accepted.
        """
        (pid,) = self._owned([prompt_id])
        self._http.post("/interrupt", {"prompt_id": pid}, "POST /interrupt")

    def delete_pending(self, prompt_ids: Iterable[str]) -> None:
        """Remove these prompts from the server's pending queue (``POST /queue {"delete"}``).

        A running prompt is not affected (see :meth:`interrupt`). Only ids this client
        submitted are accepted. Waiters on a deleted prompt get GenerationInterruptedError.
        """
        ids = self._owned(prompt_ids)
        if not ids:
            return
        self._http.post("/queue", {"delete": ids}, "POST /queue delete")
        with self._cond:
            for pid in ids:
                job = self._jobs.get(pid)
                if job is not None and not job.done:
                    job.confirm_needed = True
                    job.deleted = True
            self._cond.notify_all()

    def cancel_all(self) -> None:
        """Delete this client's pending prompts and interrupt its running one.

        Only prompts this client submitted are touched. Their waiters get
        :class:`GenerationInterruptedError`. Safe to call from any thread, or twice.
        """
        with self._cond:
            ids = [
                pid
                for pid, job in self._jobs.items()
                if job.owned and not job.done and not job.finished_ws
            ]
        if not ids:
            return
        try:
            self._cancel_on_server(ids)
        finally:
            with self._cond:
                for pid in ids:
                    job = self._jobs.get(pid)
                    if job is not None and not job.done:
                        job.failure = self._cancelled(pid, "this client cancelled it (a stop)")
                self._cond.notify_all()

    def free(self, *, free_memory: bool = False, unload_models: bool = False) -> None:
        """``POST /free``: drop the server's node-output cache and/or unload its models.

        The server acts between prompts. ``free_memory`` makes the next identical graph run
        again instead of being served from the cache.
        """
        body = {"free_memory": free_memory, "unload_models": unload_models}
        self._http.post("/free", body, "POST /free")
