"""The public client: one :class:`ComfyUIClient` per host, shared by every test of a session.

HTTP goes through one transport (thread-safe, injectable for tests); run events come from
one WebSocket (``/ws?clientId=<this client's id>``) read on a background thread. Errors are
translated at the boundaries where they occur (:mod:`._transport`, :mod:`._ws`,
:mod:`._png`) into the package's error tree, in the server's own words and naming the host.

Protocol facts this client relies on (``tests/transcripts/PROTOCOL.md``):

* ``/history/{id}`` answers ``{}`` until the prompt is finished; it is the fallback when no
  WebSocket is available, and the way to recover what a dropped socket missed;
* a prompt's private frames go only to the socket whose clientId equals the prompt's
  ``client_id``; a reconnect with the same clientId moves delivery to the new socket.

Threading model: any thread may call :meth:`~ComfyUIClient.submit`,
:meth:`~ComfyUIClient.wait`, :meth:`~ComfyUIClient.result` and
:meth:`~ComfyUIClient.cancel_all`. ``zimage-comfyui-ws`` reads the socket and only updates
per-prompt state under a lock. ``zimage-comfyui-progress`` calls progress listeners, newest
value per (prompt, node) first, so a slow listener never blocks the reader.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from ..errors import ComfyUIError, ComfyUIUnreachableError
from ..hosts import SIMULATED_HOST, HostAddress, HostAddressError, parse_host, redact_address
from ..redaction import (
    HeaderValueError,
    check_header,
    install_log_redaction,
    register_header,
    register_secret,
)
from ._control import _Control
from ._events import _PromptTracker
from ._http_errors import ssl_context
from ._preflight import check_graphs, server_info
from ._results import _Results
from ._submit import _Submitting
from ._timeouts import MAX_BACKOFF, Timeouts
from ._transport import Transport
from ._types import GeneratedImage, Progress, ServerInfo
from ._waiting import _Waiting
from ._ws import LatestValueRelay, WebSocketListener, WebSocketUnavailable

__all__ = ["ComfyUIClient"]

log = logging.getLogger("pytest_zimage_quality.comfyui")


class ComfyUIClient(_Submitting, _Waiting, _Control, _Results):
    """A session with one ComfyUI host; see the module docstring for the threading model.

    ``base_url`` is an address in the grammar of :mod:`pytest_zimage_quality.hosts`
    (``host:port`` means http; ``user:password@`` becomes basic auth, never shown). ``headers``
    go with every HTTP request and the WebSocket handshake; their values are never shown.
    ``timeout`` is the default for :meth:`wait`. ``transport`` replaces httpx's network
    transport (tests use ``httpx.MockTransport``; it carries HTTP only, so pair it with
    ``use_websocket=False``). ``retries`` and ``backoff`` bound the retries of idempotent
    requests (``backoff * 2**attempt`` seconds, at most 5 s). ``verify_tls`` is True, False,
    a CA bundle path or an ``ssl.SSLContext``. Without a WebSocket, completion is polled from
    ``/history`` every ``poll_interval`` seconds; with one, each waiter still asks the server
    every ``confirm_interval`` seconds, to notice prompts someone deleted from the queue.
    Every bound not given derives from ``timeout`` (``--zimage-timeout``): ``http_timeout``
    (the whole of one request), ``confirm_interval``, ``outage`` (how long a server that
    refuses connections may take to come back) -- see :class:`._timeouts.Timeouts`.
    ``resubmits`` bounds how often a prompt the server lost (a restart) is queued again.
    Header values are checked (no CR, LF or controls) and registered for redaction.
    """

    def __init__(
        self,
        base_url: str | HostAddress,
        *,
        headers: Sequence[tuple[str, str]] = (),
        timeout: float = 600.0,
        transport: httpx.BaseTransport | None = None,
        use_websocket: bool = True,
        client_id: str | None = None,
        retries: int = 3,
        backoff: float = 0.25,
        verify_tls: bool | str | ssl.SSLContext = True,
        http_timeout: float | None = None,
        poll_interval: float = 0.5,
        confirm_interval: float | None = None,
        outage: float | None = None,
        resubmits: int = 2,
    ) -> None:
        try:
            address = base_url if isinstance(base_url, HostAddress) else parse_host(base_url)
        except HostAddressError as exc:  # its message never shows a password
            raise ComfyUIUnreachableError(
                f"not a ComfyUI address: {exc}",
                host=redact_address(str(base_url)),
                hint="pass --zimage-host as host:port or http(s)://[user:password@]host:port",
            ) from None
        if address.simulated:
            raise ComfyUIUnreachableError(
                f"{SIMULATED_HOST!r} is not a ComfyUI address: the plugin starts its fake "
                "server itself for --zimage-host=simulated",
                host=SIMULATED_HOST,
                hint="pass a real server as host:port, or use the zimage_fake_comfyui fixture",
            )
        #: The base URL without credentials: what every message names.
        self.host = address.base_url
        for name, value in headers:
            try:
                check_header(str(name), str(value))
            except HeaderValueError as exc:  # its message never shows the value
                raise ComfyUIError(
                    f"cannot send the headers to {self.host}: {exc}",
                    host=self.host,
                    hint="fix the value of --zimage-header",
                ) from None
            register_header(str(name), str(value))
        if address.password:
            register_secret(address.password)
        install_log_redaction()
        has_authorization = any(name.lower() == "authorization" for name, _ in headers)
        auth: httpx.BasicAuth | None = None
        ws_netloc = address.netloc
        if address.has_credentials and not has_authorization:
            # credentials in the URL: basic auth (an explicit Authorization header wins)
            auth = httpx.BasicAuth(address.username, address.password)
            ws_netloc = urlsplit(address.url).netloc
        ws_scheme = "wss" if address.scheme == "https" else "ws"
        self.client_id = client_id or uuid.uuid4().hex
        self._ws_url = urlunsplit(
            (ws_scheme, ws_netloc, f"{address.path}/ws", f"clientId={quote(self.client_id)}", "")
        )
        self._header_names = tuple(name for name, _ in headers)
        self._headers = tuple((str(k), str(v)) for k, v in headers)
        self._timeouts = Timeouts.of(
            prompt=timeout,
            http=http_timeout,
            poll_interval=poll_interval,
            confirm_interval=confirm_interval,
            retries=retries,
            backoff=backoff,
            outage=outage,
            resubmits=resubmits,
        )
        self._use_websocket = use_websocket
        # one TLS context for HTTP and the WebSocket
        try:
            self._ssl = ssl_context(verify_tls) if address.scheme == "https" else None
        except (OSError, ssl.SSLError) as exc:
            raise ComfyUIUnreachableError(
                f"cannot use the TLS certificates {verify_tls!r} for {self.host}: {exc}",
                host=self.host,
                hint="verify_tls takes True, False, a CA bundle file or a CA directory",
            ) from exc
        request_headers = list(self._headers)
        if not any(name.lower() == "user-agent" for name in self._header_names):
            request_headers.append(("User-Agent", "pytest-zimage-quality"))
        self._closing = threading.Event()
        self._http = Transport(
            self.host,
            timeouts=self._timeouts,
            closing=self._closing,
            auth=auth,
            headers=request_headers,
            transport=transport,
            tls=self._ssl,
        )
        self._cond = threading.Condition()
        self._connect_lock = threading.Lock()
        self._jobs: dict[str, _PromptTracker] = {}
        self._listener: WebSocketListener | None = None
        self._relay: LatestValueRelay[tuple[str, str], Progress] = LatestValueRelay()
        self._closed = False
        self._server: ServerInfo | None = None
        self._last_activity = time.monotonic()
        #: Why the WebSocket is not used (None while it is, or before :meth:`connect`).
        self.websocket_unavailable: str | None = None if use_websocket else "disabled"

    # -- lifecycle ----------------------------------------------------------------------

    def __repr__(self) -> str:
        mode = "websocket" if self._ws_live() else "polling"
        return (
            f"ComfyUIClient({self.host!r}, client_id={self.client_id!r}, "
            f"headers={list(self._header_names)!r}, mode={mode!r})"
        )

    def __enter__(self) -> ComfyUIClient:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(self) -> ServerInfo:
        """Check the host (``GET /system_stats``) and open the WebSocket listener.

        Raises :class:`ComfyUIUnreachableError` or :class:`ComfyUIProtocolError` when the
        host is down or is not ComfyUI. A WebSocket that cannot be opened is not an error:
        the client polls ``/history`` instead and says why in ``websocket_unavailable``.
        """
        with self._connect_lock:
            self._check_open()
            self._server = info = self._system_stats()
            if self._use_websocket and self._listener is None:
                listener = WebSocketListener(
                    self._ws_url,
                    headers=self._headers,
                    ssl_context=self._ssl,
                    open_timeout=self._timeouts.connect,
                    backoff=self._timeouts.reconnect_backoff,
                    max_backoff=MAX_BACKOFF,
                    on_message=self._on_ws_message,
                    on_state=self._on_ws_state,
                )
                try:
                    listener.start()
                except WebSocketUnavailable as exc:
                    self.websocket_unavailable = str(exc)
                    log.warning(
                        "ComfyUI at %s: no WebSocket (%s); polling /history instead", self.host, exc
                    )
                else:
                    self._listener = listener
                    self.websocket_unavailable = None
            return info

    @property
    def base_url(self) -> str:
        """The base URL without credentials (the same as ``host``)."""
        return self.host

    @property
    def server(self) -> ServerInfo | None:
        """The :class:`ServerInfo` of the last :meth:`connect`, or None before it."""
        return self._server

    @property
    def uses_websocket(self) -> bool:
        """True while completions arrive over a live WebSocket (False: polling /history)."""
        return self._ws_live()

    def close(self) -> None:
        """Stop the listener threads and close connections; waiters get a ComfyUIError.

        Closing does not cancel prompts on the server: call :meth:`cancel_all` first for that.
        """
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._closing.set()
            self._cond.notify_all()
        if self._listener is not None:
            self._listener.close()
        self._relay.close()
        self._http.close()

    # -- server information -----------------------------------------------------------------

    def system_stats(self) -> dict[str, Any]:
        """``GET /system_stats`` as the server sent it (VRAM sampling, the run's provenance)."""
        what = "GET /system_stats"
        return dict(self._http.expect_dict(self._http.get_json("/system_stats", what), what))

    def _system_stats(self) -> ServerInfo:
        what = "GET /system_stats"
        stats = self._http.expect_dict(self._http.get_json("/system_stats", what), what)
        return server_info(stats, host=self.host, what=what)

    def object_info(self, class_type: str | None = None) -> dict[str, Any]:
        """``GET /object_info[/{class_type}]`` as the server answers it.

        The reply maps class names to their specs; for an unknown class it is ``{}``.
        Loader file lists are live directory scans, so nothing is cached.
        """
        path = (
            "/object_info" if class_type is None else f"/object_info/{quote(class_type, safe='')}"
        )
        what = f"GET {path}"
        return self._http.expect_dict(self._http.get_json(path, what), what)

    def model_identity(self, folder: str, filename: str) -> dict[str, Any] | None:
        """The safetensors ``__metadata__`` of a model file (``GET /view_metadata/{folder}``).

        None when the server has none (404: not a .safetensors file, no metadata, or absent).
        """
        path = f"/view_metadata/{quote(folder, safe='')}"
        what = f"GET {path}?filename={filename}"
        response = self._http.send("GET", path, what=what, params={"filename": filename})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._http.status_error(response, what)
        return self._http.expect_dict(self._http.json_of(response, what), what)

    def check_graphs(self, graphs: Mapping[str, Mapping[str, Any]]) -> None:
        """Refuse graphs the server cannot run, before anything is generated.

        ``graphs`` maps a label (a config name) to an API graph. Each node class is looked up
        once in ``/object_info``. An unknown class raises :class:`WorkflowRejectedError`; a
        literal combo input whose value is not among the server's options raises
        :class:`ModelFilesMissingError` when it names a model file (listing every missing
        file with its config, node, input and the models folder to copy it into), else
        :class:`WorkflowRejectedError` listing the offending values.
        """

        def spec_of(cls: str) -> dict[str, Any] | None:
            spec = self.object_info(cls).get(cls)
            return spec if isinstance(spec, dict) else None

        check_graphs(graphs, spec_of, host=self.host)

    # -- images ----------------------------------------------------------------------------

    def result(
        self, prompt_id: str, *, output_node: str | None = None, timeout: float | None = None
    ) -> GeneratedImage:
        """Wait for ``prompt_id``, then fetch and verify its image (:meth:`fetch_result`)."""
        return self.fetch_result(self.wait(prompt_id, timeout=timeout), output_node=output_node)

    def generate(
        self,
        graph: Mapping[str, Any],
        *,
        output_node: str,
        timeout: float | None = None,
        prompt_id: str | None = None,
        extra_pnginfo: Mapping[str, Any] | None = None,
    ) -> GeneratedImage:
        """Submit ``graph``, wait, fetch and verify its image: :meth:`submit` + :meth:`result`.

        If the wait is abandoned (Ctrl-C), the prompt is removed from the server first.
        """
        pid = self.submit(
            graph, prompt_id=prompt_id, output_node=output_node, extra_pnginfo=extra_pnginfo
        )
        try:
            return self.result(pid, output_node=output_node, timeout=timeout)
        except (KeyboardInterrupt, SystemExit):
            with self._cond:
                job = self._jobs.get(pid)
                pending = job is not None and not job.done
            if pending:
                try:
                    self._cancel_on_server([pid])
                except ComfyUIError as exc:
                    log.warning("could not cancel prompt %s on %s: %s", pid, self.host, exc)
            raise

    # -- progress --------------------------------------------------------------------------

    def add_progress_listener(self, callback: Callable[[Progress], None]) -> None:
        """Call ``callback`` with each :class:`Progress` of this client's prompts.

        Callbacks run on the ``zimage-comfyui-progress`` thread; when they are slower than
        the server, older steps of the same node are skipped (never the newest one).
        """
        self._relay.add(callback)

    def remove_progress_listener(self, callback: Callable[[Progress], None]) -> None:
        """Stop calling ``callback``."""
        self._relay.remove(callback)

    def flush_progress(self, timeout: float = 5.0) -> bool:
        """Wait until every progress event received so far was handed to the listeners."""
        return self._relay.flush(timeout)
