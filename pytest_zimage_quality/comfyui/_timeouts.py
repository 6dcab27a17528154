"""Every bound on the client's waiting, in one place.

The client's constructor arguments become one :class:`Timeouts`; the transport, the
WebSocket listener and the waiters read their deadlines, retry counts and backoff from it,
so a change to how long anything may take is made here (httpx keeps its ``Timeout`` the
same way).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_BACKOFF", "Timeouts"]

#: No pause between retries (or WebSocket reconnects) is longer than this, in seconds.
MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class Timeouts:
    """Seconds (and counts) that bound each wait; build it with :meth:`of`, which clamps.

    ``prompt``: a prompt's run, the default of ``wait`` (``--zimage-timeout``). ``http``: each
    HTTP read or write. ``poll_interval``: between ``/history`` polls without a WebSocket.
    ``confirm_interval``: between a waiter's checks that its prompt is still on the server.
    ``retries`` and ``backoff``: idempotent requests are retried ``retries`` times, after
    ``backoff * 2**attempt`` seconds (at most :data:`MAX_BACKOFF`).
    """

    prompt: float = 600.0
    http: float = 30.0
    poll_interval: float = 0.5
    confirm_interval: float = 10.0
    retries: int = 3
    backoff: float = 0.25

    @classmethod
    def of(
        cls,
        *,
        prompt: float,
        http: float,
        poll_interval: float,
        confirm_interval: float,
        retries: int,
        backoff: float,
    ) -> Timeouts:
        return cls(
            prompt=float(prompt),
            http=float(http),
            poll_interval=max(0.01, float(poll_interval)),
            confirm_interval=max(0.05, float(confirm_interval)),
            retries=max(0, int(retries)),
            backoff=max(0.0, float(backoff)),
        )

    @property
    def connect(self) -> float:
        """Opening a TCP/TLS connection or the WebSocket handshake."""
        return min(10.0, self.http)

    @property
    def reconnect_backoff(self) -> float:
        """The first pause before the WebSocket reconnects (doubling up to MAX_BACKOFF)."""
        return max(self.backoff, 0.05)

    @property
    def lost_prompt_window(self) -> float:
        """How long, after POST /prompt got no reply, the client looks for the prompt on the
        server before it concludes the request was lost (as long as it waited for a reply)."""
        return self.http

    def retry_delay(self, attempt: int) -> float:
        """The pause before retry number ``attempt + 1``."""
        return min(self.backoff * 2.0**attempt, MAX_BACKOFF)
