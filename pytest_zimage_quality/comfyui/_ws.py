"""The ComfyUI client's WebSocket side: a reader thread that reconnects, and a progress relay.

:class:`WebSocketListener` owns ``/ws?clientId=<id>`` on one daemon thread. It hands every
text frame (a JSON object) to a callback, ignores binary frames (latent previews, progress
text, and event types it does not know), and, when the socket drops, reopens it with the
*same* clientId, with a capped exponential backoff, until it is closed. The server then
routes that client's frames to the new socket (protocol README §3, transcript 14).

:class:`LatestValueRelay` calls listener callbacks on a thread of its own and keeps only
the newest value per key, so a slow callback never blocks the reader and a flood of
``progress`` frames (0.3.64 sends ~1300 per second) costs memory O(keys).

Errors of the ``websockets`` library are translated here into :class:`WebSocketUnavailable`,
which never leaves the client: it falls back to polling ``/history``.
"""

from __future__ import annotations

import json
import logging
import ssl
import struct
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, Literal, TypeVar

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.sync.client import ClientConnection, connect

from ..redaction import sanitize_server_text
from ._timeouts import WS_MESSAGE_LIMIT

__all__ = ["LatestValueRelay", "WebSocketListener", "WebSocketUnavailable", "binary_event"]

log = logging.getLogger("pytest_zimage_quality.comfyui")
#: The websockets library's own logger (it logs the handshake's headers at DEBUG); the
#: client puts the redacting filter on it.
_LIBRARY_LOG = logging.getLogger("websockets.client")

State = Literal["connected", "reconnecting", "closed"]
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Binary event types ComfyUI sends (server.py BinaryEventTypes).
BINARY_EVENTS = {
    1: "PREVIEW_IMAGE",
    2: "UNENCODED_PREVIEW_IMAGE",
    3: "TEXT",
    4: "PREVIEW_IMAGE_WITH_METADATA",
}


class WebSocketUnavailable(Exception):
    """The socket could not be opened; the message is one readable line (no header values)."""


def binary_event(data: bytes) -> str:
    """Name the event of a binary frame (``PREVIEW_IMAGE``, ``unknown(7)``, ``short frame``)."""
    if len(data) < 4:
        return "short frame"
    (event,) = struct.unpack(">I", data[:4])
    return BINARY_EVENTS.get(event, f"unknown({event})")


def open_socket(
    url: str,
    *,
    headers: Sequence[tuple[str, str]],
    ssl_context: ssl.SSLContext | None,
    open_timeout: float,
) -> ClientConnection:
    """Open ``url``; any failure becomes :class:`WebSocketUnavailable` naming the cause."""
    try:
        conn = connect(
            url,
            additional_headers=list(headers),
            ssl=ssl_context if url.startswith("wss:") else None,
            open_timeout=open_timeout,
            close_timeout=2.0,
            max_size=WS_MESSAGE_LIMIT,  # a frame past it closes the socket (then reconnects)
            max_queue=4,  # frames buffered ahead of the reader: memory <= 4 x max_size
            compression=None,  # no permessage-deflate: nothing inflates past max_size
            logger=_LIBRARY_LOG,
        )
        # The listener owns the connection's lifetime (it closes it); entering the context
        # says so to websockets >= 17.1, which otherwise warns about a direct connect().
        return conn.__enter__()
    except InvalidStatus as exc:
        raise WebSocketUnavailable(
            f"the server refused the WebSocket upgrade with HTTP {exc.response.status_code}"
        ) from exc
    except InvalidURI as exc:
        raise WebSocketUnavailable("invalid WebSocket URL") from exc
    except InvalidHandshake as exc:
        raise WebSocketUnavailable(
            f"WebSocket handshake failed: {sanitize_server_text(exc, 200)}"
        ) from exc
    except ssl.SSLError as exc:
        raise WebSocketUnavailable(
            f"TLS handshake failed: {sanitize_server_text(exc, 200)}"
        ) from exc
    except TimeoutError as exc:
        raise WebSocketUnavailable(f"no WebSocket handshake within {open_timeout:g} s") from exc
    except OSError as exc:
        raise WebSocketUnavailable(
            f"cannot connect: {sanitize_server_text(exc.strerror or exc, 200)}"
        ) from exc


class WebSocketListener:
    """Reads one ComfyUI WebSocket on a daemon thread and reconnects it when it drops.

    ``on_message`` receives each text frame's JSON object; ``on_state`` receives
    ``"reconnecting"`` when the socket dropped, ``"connected"`` once it is open again, and
    ``"closed"`` when the thread ends. Both run on the reader thread and must be quick;
    exceptions they raise are logged, never fatal.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Sequence[tuple[str, str]] = (),
        ssl_context: ssl.SSLContext | None = None,
        open_timeout: float = 10.0,
        backoff: float = 0.25,
        max_backoff: float = 5.0,
        on_message: Callable[[dict[str, Any]], None],
        on_state: Callable[[State, str], None] = lambda state, why: None,
        thread_name: str = "zimage-comfyui-ws",
    ) -> None:
        self._url = url
        self._headers = tuple(headers)
        self._ssl = ssl_context
        self._open_timeout = open_timeout
        self._backoff = max(backoff, 0.01)
        self._max_backoff = max(max_backoff, self._backoff)
        self._on_message = on_message
        self._on_state = on_state
        self._thread_name = thread_name
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conn: ClientConnection | None = None
        self._thread: threading.Thread | None = None
        self._state: State = "closed"
        self.connects = 0  #: sockets opened so far (1 + reconnects)

    @property
    def state(self) -> State:
        """``connected``, ``reconnecting`` (dropped; retrying) or ``closed``."""
        return self._state

    def start(self) -> None:
        """Open the socket now (raises :class:`WebSocketUnavailable`) and start reading it."""
        conn = self._open()
        with self._lock:
            self._conn = conn
            self._state = "connected"
        self._thread = threading.Thread(target=self._run, name=self._thread_name, daemon=True)
        self._thread.start()

    def drop(self) -> None:
        """Close the current socket as if the network dropped it (for tests): it reconnects."""
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.close()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and close the socket; safe to call twice."""
        self._stop.set()
        with self._lock:
            conn = self._conn
        if conn is not None:
            conn.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._state = "closed"

    # -- reader thread ---------------------------------------------------------------

    def _open(self) -> ClientConnection:
        conn = open_socket(
            self._url, headers=self._headers, ssl_context=self._ssl, open_timeout=self._open_timeout
        )
        self.connects += 1
        return conn

    def _run(self) -> None:
        with self._lock:
            conn = self._conn
        try:
            while conn is not None:
                why = self._read(conn)
                conn.close()
                if self._stop.is_set():
                    break
                self._set_state("reconnecting", why)
                conn = self._reconnect()
                if conn is not None:
                    self._set_state("connected", "reopened with the same clientId")
        finally:
            self._set_state("closed", "listener stopped")

    def _read(self, conn: ClientConnection) -> str:
        """Read frames until the socket ends; return why it ended."""
        while True:
            try:
                frame = conn.recv()
            except ConnectionClosed as exc:
                return f"the WebSocket closed ({exc})"
            except OSError as exc:  # pragma: no cover - the library wraps most of these
                return f"the WebSocket failed ({exc})"
            if isinstance(frame, bytes):
                log.debug("ignoring binary WebSocket frame: %s", binary_event(frame))
                continue
            try:
                message = json.loads(frame)
            except ValueError:
                log.debug("ignoring a WebSocket text frame that is not JSON: %.80r", frame)
                continue
            if not isinstance(message, dict):
                continue
            try:
                self._on_message(message)
            except Exception:  # a bug in the handler must not kill the reader
                log.exception("error while handling a ComfyUI WebSocket message")

    def _reconnect(self) -> ClientConnection | None:
        delay = self._backoff
        while not self._stop.wait(delay):
            try:
                conn = self._open()
            except WebSocketUnavailable as exc:
                log.debug("WebSocket reconnect failed: %s", exc)
                delay = min(delay * 2, self._max_backoff)
                continue
            with self._lock:
                if self._stop.is_set():
                    conn.close()
                    return None
                self._conn = conn
            return conn
        return None

    def _set_state(self, state: State, why: str) -> None:
        self._state = state
        try:
            self._on_state(state, why)
        except Exception:
            log.exception("error while handling a WebSocket state change")


class LatestValueRelay(Generic[K, V]):
    """Calls callbacks with posted values on its own thread, keeping the newest per key.

    :meth:`post` never blocks on a callback. When callbacks are slower than the posts,
    intermediate values of the same key are dropped, never the last one.
    """

    def __init__(self, *, thread_name: str = "zimage-comfyui-progress") -> None:
        self._cond = threading.Condition()
        self._pending: dict[K, V] = {}
        self._callbacks: list[Callable[[V], None]] = []
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._thread_name = thread_name

    def add(self, callback: Callable[[V], None]) -> None:
        """Register ``callback``; the delivery thread starts with the first one."""
        with self._cond:
            if self._closed:
                raise RuntimeError("the relay is closed")
            self._callbacks.append(callback)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=self._thread_name, daemon=True
                )
                self._thread.start()

    def remove(self, callback: Callable[[V], None]) -> None:
        """Unregister ``callback`` (no error if it was not registered)."""
        with self._cond:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def post(self, key: K, value: V) -> None:
        """Queue ``value`` under ``key``, replacing an undelivered older value."""
        with self._cond:
            if not self._callbacks or self._closed:
                return
            self._pending[key] = value
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything posted so far was delivered; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the delivery thread (undelivered values are dropped)."""
        with self._cond:
            self._closed = True
            self._pending.clear()
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._pending or self._closed)
                if self._closed:
                    return
                batch = list(self._pending.values())
                self._pending.clear()
                callbacks = list(self._callbacks)
                self._busy = True
            for value in batch:
                for callback in callbacks:
                    try:
                        callback(value)
                    except Exception:
                        log.exception("a progress listener raised; it stays registered")
