"""Every bound on the client's waiting, in one place, derived from ``--zimage-timeout``.

The client's constructor arguments become one :class:`Timeouts`; the transport, the
WebSocket listener and the waiters read their deadlines, retry counts, backoff and size
limits from it, so a change to how long anything may take is made here (httpx keeps its
``Timeout`` the same way). docs/reliability.md lists each bound with its formula.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "JSON_BODY_LIMIT",
    "MAX_BACKOFF",
    "VIEW_BODY_SLACK",
    "VIEW_PIXELS_WITHOUT_SIZE",
    "WS_MESSAGE_LIMIT",
    "Timeouts",
    "default_http_timeout",
]

#: No pause between retries (or WebSocket reconnects) is longer than this, in seconds.
MAX_BACKOFF = 5.0
#: The largest WebSocket message accepted (ComfyUI's previews are JPEGs of <= 512 px).
WS_MESSAGE_LIMIT = 8 * 2**20
#: The largest JSON reply accepted (``/object_info`` of a server with many custom nodes
#: is ~10 MB).
JSON_BODY_LIMIT = 128 * 2**20
#: Added to a ``/view`` body's cap for the PNG's metadata chunks (the embedded workflow).
VIEW_BODY_SLACK = 16 * 2**20
#: The pixel cap of an image whose graph names no width and height (8192 x 8192).
VIEW_PIXELS_WITHOUT_SIZE = 8192 * 8192


def default_http_timeout(prompt: float) -> float:
    """The default bound of one HTTP request: a quarter of ``--zimage-timeout``,
    between 2 and 30 seconds."""
    return min(30.0, max(2.0, prompt / 4.0))


@dataclass(frozen=True)
class Timeouts:
    """Seconds (and counts) that bound each wait; build it with :meth:`of`, which clamps.

    ``prompt``: a prompt's run (``--zimage-timeout``), and how long its place in the queue
    may stand still. ``http``: the WHOLE of one HTTP request, connect + headers + body (a
    ``/view`` that trickles fails at this deadline, not at httpx's per-read timeout).
    ``poll_interval``: between ``/history`` polls without a WebSocket. ``confirm_interval``:
    between a waiter's checks that its prompt is still on the server. ``retries`` and
    ``backoff``: a failed idempotent request (reset, 5xx) is retried ``retries`` times,
    after ``backoff * 2**attempt`` seconds (at most :data:`MAX_BACKOFF`). ``outage``: how
    long the client keeps retrying a server that refuses connections (a restart) before
    it says the server went away. ``resubmits``: how often a prompt the server lost is
    queued again.
    """

    prompt: float = 600.0
    http: float = 30.0
    poll_interval: float = 0.5
    confirm_interval: float = 10.0
    retries: int = 3
    backoff: float = 0.25
    outage: float = 120.0
    resubmits: int = 2

    @classmethod
    def of(
        cls,
        *,
        prompt: float,
        http: float | None = None,
        poll_interval: float = 0.5,
        confirm_interval: float | None = None,
        retries: int = 3,
        backoff: float = 0.25,
        outage: float | None = None,
        resubmits: int = 2,
    ) -> Timeouts:
        """The bounds for ``prompt`` = ``--zimage-timeout``; what is not given derives from it.

        ``http`` defaults to :func:`default_http_timeout`; ``confirm_interval`` to a third of
        ``prompt`` (at most 10 s), so a queue that stopped moving is noticed in time;
        ``outage`` to ``prompt`` between 5 and 120 s.
        """
        prompt = max(0.001, float(prompt))
        return cls(
            prompt=prompt,
            http=max(0.05, float(http if http is not None else default_http_timeout(prompt))),
            poll_interval=max(0.01, float(poll_interval)),
            confirm_interval=max(
                0.05,
                float(confirm_interval if confirm_interval is not None else min(10.0, prompt / 3)),
            ),
            retries=max(0, int(retries)),
            backoff=max(0.0, float(backoff)),
            outage=max(0.0, float(outage if outage is not None else min(120.0, max(5.0, prompt)))),
            resubmits=max(0, int(resubmits)),
        )

    @property
    def connect(self) -> float:
        """Opening a TCP/TLS connection or the WebSocket handshake."""
        return min(10.0, self.http)

    @property
    def submit_reply(self) -> float:
        """How long ``POST /prompt`` waits for its reply before the client looks for the
        prompt in ``/queue`` and ``/history`` instead (a dropped reply costs this, not
        ``http``)."""
        return min(5.0, self.http)

    @property
    def shutdown(self) -> float:
        """The whole of a stop: cancelling this run's prompts and closing the connections."""
        return min(10.0, max(2.0, self.http))

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
        return min(self.backoff * 2.0 ** min(attempt, 16), MAX_BACKOFF)

    @staticmethod
    def view_limits(size: tuple[int, int] | None) -> tuple[int, int]:
        """(pixel cap, byte cap) of a ``/view`` image whose graph asked for ``size``.

        The pixel cap is four times the requested area (a 2x upscale in the workflow
        fits), or :data:`VIEW_PIXELS_WITHOUT_SIZE` when the graph names none; the byte cap
        is 4 bytes per allowed pixel (RGBA, uncompressed) plus :data:`VIEW_BODY_SLACK`.
        """
        pixels = VIEW_PIXELS_WITHOUT_SIZE if size is None else max(1, 4 * size[0] * size[1])
        return pixels, 4 * pixels + VIEW_BODY_SLACK
