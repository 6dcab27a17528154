"""The ComfyUI client: check a host, submit graphs, await completions, fetch and verify images.

One :class:`ComfyUIClient` per host, shared by every test of a session. HTTP goes through one
``httpx.Client`` (thread-safe, injectable transport); run events come from one WebSocket
(``/ws?clientId=<this client's id>``) read on a background thread. Every httpx, websockets and
PIL error is translated at this module's boundary into the package's error tree
(:mod:`pytest_zimage_quality.errors`), in the server's own words and naming the host.

Protocol facts this client relies on (``tests/transcripts/PROTOCOL.md``):

* a prompt is finished when ``executing`` arrives with ``node: null`` and its ``prompt_id``
  (§5.1): the server writes history *before* that frame, but sends ``execution_success``
  *before* writing history, so that frame is not a safe signal;
* ``/history/{id}`` answers ``{}`` until the prompt is finished; it is the fallback when no
  WebSocket is available, and the way to recover what a dropped socket missed;
* a prompt's private frames go only to the socket whose clientId equals the prompt's
  ``client_id``; a reconnect with the same clientId moves delivery to the new socket.

Threading model
---------------
* Any thread may call :meth:`ComfyUIClient.submit`, :meth:`~ComfyUIClient.wait`,
  :meth:`~ComfyUIClient.result` and :meth:`~ComfyUIClient.cancel_all`; waits on different
  prompt ids proceed in parallel (each waiter blocks on one shared condition variable and
  does its own HTTP checks, never on the reader thread).
* ``zimage-comfyui-ws`` reads the socket and only updates per-prompt state under a lock.
* ``zimage-comfyui-progress`` calls progress listeners, newest value per (prompt, node)
  first, so a slow listener never blocks the reader.

Imports neither pytest nor torch; the plugin imports this module lazily.
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from ._png import decode_png, prompt_differences
from ._ws import LatestValueRelay, State, WebSocketListener, WebSocketUnavailable
from .errors import (
    ComfyUIError,
    ComfyUIHTTPError,
    ComfyUIProtocolError,
    ComfyUIUnreachableError,
    GenerationFailedError,
    GenerationInterruptedError,
    GenerationTimeoutError,
    ModelFilesMissingError,
    WorkflowRejectedError,
)
from .hosts import SIMULATED_HOST, HostAddress, HostAddressError, parse_host, redact_address
from .workflow import MODEL_INPUTS

__all__ = [
    "LOADER_FOLDERS",
    "ComfyUIClient",
    "Completion",
    "DeviceInfo",
    "Generation",
    "ImageRef",
    "Progress",
    "ServerInfo",
]

log = logging.getLogger(__name__)

#: Loader class -> {input name: models folder the server reads that input's file from}.
LOADER_FOLDERS: Mapping[str, Mapping[str, str]] = {
    cls: {name: folder for (c, name), folder in MODEL_INPUTS.items() if c == cls}
    for cls in dict.fromkeys(c for c, _ in MODEL_INPUTS)
}
_MODEL_FILE_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".gguf")
_RETRY_STATUSES = frozenset({502, 503, 504})
_JOB_EVENTS = frozenset(
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
_MAX_BACKOFF = 5.0


# ---------------------------------------------------------------------------------------
# value objects


@dataclass(frozen=True)
class DeviceInfo:
    """One compute device from ``/system_stats`` (``index`` is None on CPU; VRAM in bytes)."""

    name: str
    type: str
    index: int | None
    vram_total: int
    vram_free: int

    @property
    def readable_name(self) -> str:
        """The device's name without ComfyUI's decoration.

        ``"cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"`` becomes ``"NVIDIA H100 80GB HBM3"``.
        """
        name = self.name.split(" : ", 1)[0].strip()
        match = re.match(r"^[a-z]+:\d+\s+(.+)$", name)
        return match.group(1) if match else name


@dataclass(frozen=True)
class ServerInfo:
    """What ``/system_stats`` says about the host (shown in the pytest report header)."""

    url: str
    comfyui_version: str
    python_version: str
    pytorch_version: str
    os: str
    devices: tuple[DeviceInfo, ...]
    argv: tuple[str, ...] = ()

    @property
    def gpu_name(self) -> str:
        """The first device's readable name, or ``"cpu"`` when the server has no device."""
        return self.devices[0].readable_name if self.devices else "cpu"

    @property
    def embeds_metadata(self) -> bool:
        """False when the server runs with ``--disable-metadata`` (no prompt in its PNGs)."""
        return "--disable-metadata" not in self.argv


@dataclass(frozen=True)
class ImageRef:
    """An output file exactly as the server names it: the ``/view`` triplet."""

    filename: str
    subfolder: str
    type: str

    def params(self) -> dict[str, str]:
        """The ``/view`` query parameters for this file."""
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}

    def __str__(self) -> str:
        return f"{self.filename} (subfolder {self.subfolder!r}, type {self.type!r})"


@dataclass(frozen=True)
class Progress:
    """Node ``node`` of prompt ``prompt_id`` is at step ``value`` of ``max``."""

    prompt_id: str
    node: str
    value: int
    max: int
    class_type: str = ""  #: the node's class when this client submitted the graph


@dataclass(frozen=True)
class Completion:
    """A prompt the server finished successfully.

    ``outputs`` maps each output node to its images; ``cached_nodes`` are the nodes the
    server took from its cache; ``server_seconds`` spans execution_start to
    execution_success on the server's clock (None if unknown); ``fully_cached`` means no
    node ran at all. ``source`` says how completion was learnt: ``websocket`` or ``history``.
    """

    prompt_id: str
    outputs: Mapping[str, tuple[ImageRef, ...]]
    cached_nodes: tuple[str, ...]
    server_seconds: float | None
    fully_cached: bool
    source: str = "websocket"


@dataclass(frozen=True)
class Generation:
    """One verified image: the PNG bytes, where they came from, and what it cost.

    ``wall_seconds`` runs from submit to the image fetched (queue time included);
    ``server_seconds`` is the server's own execution time; ``cached`` means the server
    served the output node from its cache instead of rendering it.
    """

    prompt_id: str
    image: bytes = field(repr=False)
    image_ref: ImageRef
    wall_seconds: float
    server_seconds: float | None
    cached: bool
    host: str


# ---------------------------------------------------------------------------------------
# per-prompt state (guarded by the client's condition variable)


@dataclass(eq=False)
class _Job:
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
    completion: Completion | None = None
    failure: Callable[[], ComfyUIError] | None = None

    @property
    def done(self) -> bool:
        return self.completion is not None or self.failure is not None


def _images(ui: object) -> tuple[ImageRef, ...]:
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


def _is_link(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _combo_options(spec: object) -> list[Any] | None:
    """The options of a combo input spec, in either encoding; None if not a combo."""
    if not isinstance(spec, list) or not spec:
        return None
    head = spec[0]
    if isinstance(head, list):  # old encoding: [[opt, ...], {...}]
        return head
    if head == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        options = spec[1].get("options")
        if isinstance(options, list) and not spec[1].get("multiselect"):
            return options
    return None


def _config(label: str) -> str:
    """``config 'nvfp4'`` for a bare label; a label that says what it is stays as it is."""
    return label if label.lower().startswith(("config", "suite")) else f"config {label!r}"


def _excerpt(text: str, width: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _list_some(values: Sequence[object], limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values)} in all)"
    return f"[{shown}]"


def _ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """The TLS context for ``verify_tls``: a context as given, a CA file or directory, or
    the default trust store (certifi, as httpx uses), or no verification at all."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        if Path(verify).is_dir():
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify)


def _is_tls_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return "SSL" in text or "CERTIFICATE" in text.upper()


# ---------------------------------------------------------------------------------------
# the client


class ComfyUIClient:
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
        http_timeout: float = 30.0,
        poll_interval: float = 0.5,
        confirm_interval: float = 10.0,
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
        self._base = self.host
        has_authorization = any(name.lower() == "authorization" for name, _ in headers)
        self._auth: httpx.BasicAuth | None = None
        ws_netloc = address.netloc
        if address.has_credentials and not has_authorization:
            # credentials in the URL: basic auth (an explicit Authorization header wins)
            self._auth = httpx.BasicAuth(address.username, address.password)
            ws_netloc = urlsplit(address.url).netloc
        ws_scheme = "wss" if address.scheme == "https" else "ws"
        self.client_id = client_id or uuid.uuid4().hex
        self._ws_url = urlunsplit(
            (ws_scheme, ws_netloc, f"{address.path}/ws", f"clientId={quote(self.client_id)}", "")
        )
        self._header_names = tuple(name for name, _ in headers)
        self._headers = tuple((str(k), str(v)) for k, v in headers)
        self._timeout = float(timeout)
        self._http_timeout = float(http_timeout)
        self._retries = max(0, int(retries))
        self._backoff = max(0.0, float(backoff))
        self._poll_interval = max(0.01, float(poll_interval))
        self._confirm_interval = max(0.05, float(confirm_interval))
        self._use_websocket = use_websocket
        # one TLS context for HTTP and the WebSocket
        try:
            self._ssl = _ssl_context(verify_tls) if address.scheme == "https" else None
        except (OSError, ssl.SSLError) as exc:
            raise ComfyUIUnreachableError(
                f"cannot use the TLS certificates {verify_tls!r} for {self.host}: {exc}",
                host=self.host,
                hint="verify_tls takes True, False, a CA bundle file or a CA directory",
            ) from exc
        request_headers = list(self._headers)
        if not any(name.lower() == "user-agent" for name in self._header_names):
            request_headers.append(("User-Agent", "pytest-zimage-quality"))
        self._http = httpx.Client(
            base_url=self._base,
            auth=self._auth,
            headers=request_headers,
            timeout=httpx.Timeout(self._http_timeout, connect=min(10.0, self._http_timeout)),
            transport=transport,
            verify=self._ssl if self._ssl is not None else True,
            follow_redirects=False,
        )
        self._cond = threading.Condition()
        self._connect_lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._listener: WebSocketListener | None = None
        self._relay: LatestValueRelay[tuple[str, str], Progress] = LatestValueRelay()
        self._closing = threading.Event()
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
                    open_timeout=min(10.0, self._http_timeout),
                    backoff=max(self._backoff, 0.05),
                    max_backoff=_MAX_BACKOFF,
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

    def _check_open(self) -> None:
        if self._closed:
            raise ComfyUIError(f"the client for {self.host} is closed", host=self.host)

    def _ensure_connected(self) -> None:
        if self._server is None:
            self.connect()

    # -- HTTP boundary: retries and error translation -------------------------------------

    def _sleep(self, attempt: int) -> None:
        self._closing.wait(min(self._backoff * (2**attempt), _MAX_BACKOFF))

    def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        body: object = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One request, retried when idempotent; transport errors become ComfyUIErrors."""
        self._check_open()
        attempts = self._retries + 1 if idempotent else 1
        content = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if content is not None else None
        for attempt in range(attempts):
            try:
                response = self._http.request(
                    method, path, params=params, content=content, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt + 1 < attempts and self._retryable(exc) and not self._closed:
                    log.debug("%s on %s failed (%s); retrying", what, self.host, exc)
                    self._sleep(attempt)
                    continue
                raise self._transport_error(exc, what) from exc
            except RuntimeError as exc:  # httpx refuses requests once the client is closed
                raise ComfyUIError(
                    f"{what}: the client for {self.host} is closed", host=self.host
                ) from exc
            if response.status_code in _RETRY_STATUSES and attempt + 1 < attempts:
                log.debug("%s on %s: HTTP %s; retrying", what, self.host, response.status_code)
                self._sleep(attempt)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _retryable(exc: httpx.TransportError) -> bool:
        if isinstance(exc, httpx.ConnectError) and _is_tls_error(exc):
            return False  # a certificate problem does not go away by retrying
        return isinstance(
            exc,
            (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.ReadTimeout,
                httpx.ReadError,
                httpx.WriteError,
                httpx.RemoteProtocolError,
                httpx.PoolTimeout,
            ),
        )

    def _transport_error(self, exc: httpx.TransportError, what: str) -> ComfyUIError:
        host, text = self.host, str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectTimeout):
            return ComfyUIUnreachableError(f"{what}: connecting to {host} timed out", host=host)
        if isinstance(exc, httpx.ConnectError):
            if _is_tls_error(exc):
                return ComfyUIUnreachableError(
                    f"{what}: the TLS handshake with {host} failed: {text}",
                    host=host,
                    hint="check the server's certificate, or give the CA bundle "
                    "(verify_tls=<path>); use http:// if the server does not speak TLS",
                )
            lowered = text.lower()
            if any(
                s in lowered
                for s in (
                    "name or service",
                    "nodename",
                    "getaddrinfo",
                    "name resolution",
                    "no address",
                )
            ):
                return ComfyUIUnreachableError(
                    f"{what}: cannot resolve the host name of {host}: {text}",
                    host=host,
                    hint="check the host name in --zimage-host",
                )
            return ComfyUIUnreachableError(
                f"{what}: cannot connect to ComfyUI at {host}: {text}", host=host
            )
        if isinstance(exc, httpx.TimeoutException):
            return ComfyUIUnreachableError(
                f"{what}: {host} did not answer within {self._http_timeout:g} s",
                host=host,
                hint="the server may be overloaded or hung; check its console",
            )
        if isinstance(exc, httpx.RemoteProtocolError):
            if "disconnect" in text.lower():
                return ComfyUIUnreachableError(
                    f"{what}: {host} closed the connection without a reply ({text})", host=host
                )
            return ComfyUIProtocolError(
                f"{what}: {host} did not answer in valid HTTP ({text})", host=host
            )
        return ComfyUIUnreachableError(
            f"{what}: talking to {host} failed: {type(exc).__name__}: {text}", host=host
        )

    def _status_error(self, response: httpx.Response, what: str) -> ComfyUIHTTPError:
        status = response.status_code
        body = _excerpt(response.text) if response.content else "(empty body)"
        message = f"{what}: {self.host} answered HTTP {status}: {body}"
        hint = None
        if status in (401, 407):
            hint = "the host wants authentication: pass it with --zimage-header 'Name: value'"
        elif status == 403:
            hint = (
                "the host refused the request: check the authentication headers "
                "(--zimage-header), or start ComfyUI with --enable-cors-header if a proxy "
                "sends an Origin header"
            )
        elif 300 <= status < 400:
            location = response.headers.get("location", "?")
            message = f"{what}: {self.host} redirected to {location} (HTTP {status})"
            hint = "point --zimage-host at the ComfyUI server itself (a login page redirects)"
        elif status >= 500:
            hint = "the server failed; its console has the traceback"
        return ComfyUIHTTPError(message, host=self.host, status=status, hint=hint)

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            kind = response.headers.get("content-type", "no content type")
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered HTTP {response.status_code} with {kind}, not "
                f"JSON: {_excerpt(response.text, 120) or '(empty body)'}",
                host=self.host,
            ) from exc

    def _get_json(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Any:
        response = self._send("GET", path, what=what, params=params)
        if response.status_code != 200:
            raise self._status_error(response, what)
        return self._json(response, what)

    def _post(self, path: str, body: object, what: str) -> None:
        response = self._send("POST", path, what=what, body=body)
        if response.status_code != 200:
            raise self._status_error(response, what)

    def _expect_dict(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered {_excerpt(json.dumps(value), 120)}, "
                "not a JSON object",
                host=self.host,
            )
        return value

    # -- server information -----------------------------------------------------------------

    def _system_stats(self) -> ServerInfo:
        what = "GET /system_stats"
        stats = self._expect_dict(self._get_json("/system_stats", what), what)
        system = stats.get("system")
        if not isinstance(system, dict) or "comfyui_version" not in system:
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered JSON without system.comfyui_version; "
                "it does not look like ComfyUI",
                host=self.host,
            )
        devices = []
        for dev in stats.get("devices") or ():
            if isinstance(dev, dict):
                index = dev.get("index")
                devices.append(
                    DeviceInfo(
                        name=str(dev.get("name", "?")),
                        type=str(dev.get("type", "?")),
                        index=index if isinstance(index, int) else None,
                        vram_total=int(dev.get("vram_total") or 0),
                        vram_free=int(dev.get("vram_free") or 0),
                    )
                )
        argv = system.get("argv")
        return ServerInfo(
            url=self.host,
            comfyui_version=str(system.get("comfyui_version")),
            python_version=str(system.get("python_version", "")),
            pytorch_version=str(system.get("pytorch_version", "")),
            os=str(system.get("os", "")),
            devices=tuple(devices),
            argv=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
        )

    def object_info(self, class_type: str | None = None) -> dict[str, Any]:
        """``GET /object_info[/{class_type}]`` as the server answers it.

        The reply maps class names to their specs; for an unknown class it is ``{}``.
        Loader file lists are live directory scans, so nothing is cached.
        """
        path = (
            "/object_info" if class_type is None else f"/object_info/{quote(class_type, safe='')}"
        )
        what = f"GET {path}"
        return self._expect_dict(self._get_json(path, what), what)

    def model_identity(self, folder: str, filename: str) -> dict[str, Any] | None:
        """The safetensors ``__metadata__`` of a model file (``GET /view_metadata/{folder}``).

        None when the server has none (404: not a .safetensors file, no metadata, or absent).
        """
        path = f"/view_metadata/{quote(folder, safe='')}"
        what = f"GET {path}?filename={filename}"
        response = self._send("GET", path, what=what, params={"filename": filename})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._status_error(response, what)
        return self._expect_dict(self._json(response, what), what)

    def check_graphs(self, graphs: Mapping[str, Mapping[str, Any]]) -> None:
        """Refuse graphs the server cannot run, before anything is generated.

        ``graphs`` maps a label (a config name) to an API graph. Each node class is looked up
        once in ``/object_info``. An unknown class raises :class:`WorkflowRejectedError`; a
        literal combo input whose value is not among the server's options raises
        :class:`ModelFilesMissingError` when it names a model file (listing every missing
        file with its config, node, input and the models folder to copy it into), else
        :class:`WorkflowRejectedError` listing the offending values.
        """
        specs: dict[str, dict[str, Any] | None] = {}
        for graph in graphs.values():
            for node in graph.values():
                cls = node.get("class_type") if isinstance(node, Mapping) else None
                if isinstance(cls, str) and cls not in specs:
                    reply = self.object_info(cls)
                    spec = reply.get(cls)
                    specs[cls] = spec if isinstance(spec, dict) else None
        unknown: list[str] = []
        invalid: list[str] = []
        missing: list[dict[str, str]] = []
        for label, graph in graphs.items():
            for node_id, node in graph.items():
                cls = node.get("class_type") if isinstance(node, Mapping) else None
                if not isinstance(cls, str):
                    unknown.append(f"{_config(label)}: node {node_id} has no class_type")
                    continue
                spec = specs.get(cls)
                if spec is None:
                    unknown.append(f"{_config(label)}: node {node_id} uses class {cls!r}")
                    continue
                declared: dict[str, Any] = {}
                for group in ("required", "optional"):
                    entries = (spec.get("input") or {}).get(group)
                    if isinstance(entries, dict):
                        declared.update(entries)
                for name, value in (node.get("inputs") or {}).items():
                    options = _combo_options(declared.get(name))
                    if options is None or _is_link(value) or isinstance(value, dict):
                        continue
                    if value in options:
                        continue
                    folder = LOADER_FOLDERS.get(cls, {}).get(name)
                    if (
                        folder is None
                        and isinstance(value, str)
                        and (value.lower().endswith(_MODEL_FILE_SUFFIXES))
                    ):
                        folder = "?"
                    if folder is not None:
                        missing.append(
                            {
                                "config": str(label),
                                "node": str(node_id),
                                "class_type": cls,
                                "input": str(name),
                                "file": str(value),
                                "folder": folder,
                                "available": ", ".join(map(str, options[:5]))
                                + (", ..." if len(options) > 5 else ""),
                            }
                        )
                    else:
                        invalid.append(
                            f"{_config(label)}: node {node_id} ({cls}) input {name} = "
                            f"{value!r} is not one of the server's options {_list_some(options)}"
                        )
        if unknown:
            raise WorkflowRejectedError(
                f"the ComfyUI server at {self.host} does not know these node classes:\n  "
                + "\n  ".join(unknown),
                host=self.host,
                error_type="missing_node_type",
                hint="install the custom nodes that provide them on the server, "
                "or fix class_type in the workflow",
            )
        if missing:
            lines = []
            for m in missing:
                where = (
                    f"models/{m['folder']}/"
                    if m["folder"] != "?"
                    else "the models folder this node loads from"
                )
                have = f" (server has: {m['available']})" if m["available"] else " (folder empty)"
                lines.append(
                    f"{_config(m['config'])}: node {m['node']} ({m['class_type']}) "
                    f"{m['input']} = {m['file']!r}: copy it into {where}{have}"
                )
            also = ("\n  also: " + "\n  also: ".join(invalid)) if invalid else ""
            raise ModelFilesMissingError(
                f"{len(missing)} model file(s) named by the suite are not on the ComfyUI "
                f"server at {self.host}:\n  " + "\n  ".join(lines) + also,
                host=self.host,
                missing=missing,
                hint="copy each file into the named folder under the server's models/ "
                "directory (no restart needed), or fix the file name in the suite's config",
            )
        if invalid:
            raise WorkflowRejectedError(
                f"the ComfyUI server at {self.host} would reject these inputs:\n  "
                + "\n  ".join(invalid),
                host=self.host,
                error_type="value_not_in_list",
                hint="fix the values in the workflow or the config overrides",
            )

    # -- queue -------------------------------------------------------------------------------

    def _queue_items(self) -> tuple[list[list[Any]], list[list[Any]]]:
        what = "GET /queue"
        reply = self._expect_dict(self._get_json("/queue", what), what)
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

    def queue(self) -> tuple[list[str], list[str]]:
        """Prompt ids on the server: (running, pending in run order by ``number``)."""
        running, pending = self._queue_items()
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

    def interrupt(self, prompt_id: str) -> None:
        """Interrupt ``prompt_id`` if it is the one running (``POST /interrupt`` with its id).

        The targeted interrupt is a no-op on the server for any other prompt, so this never
        stops someone else's job. Only ids this client submitted are accepted.
        """
        (pid,) = self._owned([prompt_id])
        self._post("/interrupt", {"prompt_id": pid}, "POST /interrupt")

    def delete_pending(self, prompt_ids: Iterable[str]) -> None:
        """Remove these prompts from the server's pending queue (``POST /queue {"delete"}``).

        A running prompt is not affected (see :meth:`interrupt`). Only ids this client
        submitted are accepted. Waiters on a deleted prompt get GenerationInterruptedError.
        """
        ids = self._owned(prompt_ids)
        if not ids:
            return
        self._post("/queue", {"delete": ids}, "POST /queue delete")
        with self._cond:
            for pid in ids:
                job = self._jobs.get(pid)
                if job is not None and not job.done:
                    job.confirm_needed = True
                    job.deleted = True
            self._cond.notify_all()

    def _cancel_on_server(self, prompt_ids: Sequence[str]) -> None:
        """Delete these (owned) prompts if pending, then interrupt whichever of them runs."""
        ids = list(prompt_ids)
        for _ in range(3):
            self._post("/queue", {"delete": ids}, "POST /queue delete")
            running, pending = self.queue()
            for pid in running:
                if pid in ids:
                    self._post("/interrupt", {"prompt_id": pid}, "POST /interrupt")
            if not any(pid in ids for pid in pending):
                return

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
        self._post("/free", body, "POST /free")

    def _cancelled(self, pid: str, why: str) -> Callable[[], ComfyUIError]:
        host = self.host

        def make() -> ComfyUIError:
            return GenerationInterruptedError(
                f"prompt {pid} on {host} did not run: {why}", host=host
            )

        return make

    # -- submit ----------------------------------------------------------------------------

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
            job = _Job(pid, copy, output_node, submitted_at=time.monotonic())
            job.next_confirm = job.submitted_at + self._confirm_interval
            self._jobs[pid] = job
        try:
            return self._post_prompt(job, body)
        except BaseException:
            with self._cond:
                if not job.accepted and self._jobs.get(pid) is job:
                    del self._jobs[pid]
            raise

    def _post_prompt(self, job: _Job, body: dict[str, Any]) -> str:
        pid, what = job.prompt_id, "POST /prompt"
        content = json.dumps(body).encode("utf-8")
        attempts = self._retries + 1
        for attempt in range(attempts):
            self._check_open()
            failure: httpx.TransportError | httpx.Response
            try:
                response = self._http.post(
                    "/prompt", content=content, headers={"Content-Type": "application/json"}
                )
            except httpx.TransportError as exc:
                failure = exc
            else:
                if response.status_code not in _RETRY_STATUSES:
                    return self._accept(job, response)
                failure = response
            if isinstance(failure, httpx.TransportError) and not self._retryable(failure):
                raise self._transport_error(failure, what) from failure
            outputs = self._arrived(job, failure)
            if outputs is not None:
                log.info("prompt %s reached %s despite %s", pid, self.host, failure)
                self._mark_accepted(job, outputs)
                return pid
            if attempt + 1 >= attempts:
                break
            self._sleep(attempt)
        if isinstance(failure, httpx.Response):
            raise self._status_error(failure, what)
        raise self._transport_error(failure, what) from failure

    def _arrived(
        self, job: _Job, failure: httpx.TransportError | httpx.Response
    ) -> list[str] | None:
        """After a failed POST /prompt: did the prompt reach the server anyway?

        A connect error or a 503 means the request was not handled: None at once (503 after
        one check). Otherwise (no reply, a reset, 502/504 from a proxy) the server may still
        be handling it, so the client keeps looking in /queue and /history for as long as
        it waited for the reply (``http_timeout``) before it concludes the prompt was lost.
        """
        if isinstance(failure, (httpx.ConnectError, httpx.ConnectTimeout)):
            return None
        window = (
            0.0
            if isinstance(failure, httpx.Response) and failure.status_code == 503
            else self._http_timeout
        )
        deadline = time.monotonic() + window
        delay = max(self._backoff, 0.05)
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
        self, job: _Job, failure: httpx.TransportError | httpx.Response
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

    def _mark_accepted(self, job: _Job, outputs: list[str]) -> None:
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

    def _drop(self, job: _Job) -> None:
        """Remove a prompt we will not wait for from the server, and forget it."""
        try:
            self._cancel_on_server([job.prompt_id])
        except ComfyUIError as exc:
            log.warning("could not remove prompt %s from %s: %s", job.prompt_id, self.host, exc)
        with self._cond:
            self._jobs.pop(job.prompt_id, None)

    def _accept(self, job: _Job, response: httpx.Response) -> str:
        what = "POST /prompt"
        if response.status_code == 400:
            reply = self._json(response, what)
            if isinstance(reply, dict) and ("error" in reply or "node_errors" in reply):
                raise self._rejection(reply, job.graph or {})
            raise self._status_error(response, what)
        if response.status_code != 200:
            raise self._status_error(response, what)
        reply = self._expect_dict(self._json(response, what), what)
        returned = reply.get("prompt_id")
        if not isinstance(returned, str) or not returned:
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered 200 without a prompt_id: "
                f"{_excerpt(json.dumps(reply), 160)}",
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
                rejection = self._rejection(
                    {
                        "error": {
                            "type": "prompt_outputs_failed_validation",
                            "message": "some outputs failed validation and were dropped",
                        },
                        "node_errors": node_errors,
                    },
                    job.graph or {},
                )
                self._drop(job)
                raise rejection
            log.info(
                "ComfyUI at %s dropped outputs %s of prompt %s",
                self.host,
                sorted(dropped),
                returned,
            )
        return returned

    def _rejection(
        self, reply: Mapping[str, Any], graph: Mapping[str, Any]
    ) -> WorkflowRejectedError:
        """A readable WorkflowRejectedError from a validation reply (400 body)."""
        error = reply.get("error")
        if not isinstance(error, Mapping):
            error = {"type": "", "message": str(error or "validation failed")}
        etype = str(error.get("type") or "")
        message = str(error.get("message") or "validation failed")
        details = str(error.get("details") or "")
        head = message + (f" ({details})" if details and details not in message else "")
        lines = [f"ComfyUI at {self.host} rejected the workflow: {head} [{etype}]"]
        hint = "fix the workflow template or the config overrides for the node(s) named above"
        extra = error.get("extra_info")
        if etype in ("missing_node_type", "invalid_prompt"):
            node_id = extra.get("node_id") if isinstance(extra, Mapping) else None
            if node_id is None:
                found = re.search(r"#([^'\s]+)'", details)
                node_id = found.group(1) if found else None
            if node_id is not None:
                node = graph.get(str(node_id))
                cls = node.get("class_type") if isinstance(node, Mapping) else None
                lines.append(f"  node {node_id} (class {cls!r})")
            hint = (
                "install the custom node that provides the class on the server, "
                "or fix class_type in the workflow"
            )
        elif etype == "prompt_no_outputs":
            hint = "the graph needs an output node such as SaveImage"
        node_errors = reply.get("node_errors")
        files: list[str] = []
        if isinstance(node_errors, Mapping):
            for node_id, entry in node_errors.items():
                if not isinstance(entry, Mapping):
                    continue
                cls = str(entry.get("class_type") or "?")
                for err in entry.get("errors") or ():
                    if not isinstance(err, Mapping):
                        continue
                    info = err.get("extra_info")
                    name = info.get("input_name") if isinstance(info, Mapping) else None
                    where = f"node {node_id} ({cls})" + (f" input {name}" if name else "")
                    text = str(err.get("message") or err.get("type") or "error")
                    det = str(err.get("details") or "")
                    if det and det != name:
                        text += f": {det}"
                    lines.append(f"  {where}: {text}")
                    folder = LOADER_FOLDERS.get(cls, {}).get(str(name))
                    if err.get("type") == "value_not_in_list" and folder:
                        files.append(f"models/{folder}")
        if files:
            hint = (
                f"a model file is missing on the server: copy it into "
                f"{', '.join(dict.fromkeys(files))}, or fix the file name in the config"
            )
        return WorkflowRejectedError(
            "\n".join(lines),
            host=self.host,
            error_type=etype,
            node_errors=dict(node_errors) if isinstance(node_errors, Mapping) else {},
            hint=hint,
        )

    # -- WebSocket events (reader thread: quick, under the lock) ------------------------------

    def _ws_live(self) -> bool:
        return self._listener is not None and self._listener.state == "connected"

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
        self._last_activity = time.monotonic()
        kind, data = message.get("type"), message.get("data")
        if not isinstance(data, dict):
            return
        pid = data.get("prompt_id")
        if not isinstance(pid, str):
            return
        if kind == "progress":
            job = self._jobs.get(pid)
            node, value, top = data.get("node"), data.get("value"), data.get("max")
            if job is None or job.done or not isinstance(node, str):
                return
            if not isinstance(value, (int, float)) or not isinstance(top, (int, float)):
                return
            cls = ""
            if job.graph is not None and isinstance(job.graph.get(node), dict):
                cls = str(job.graph[node].get("class_type", ""))
            self._relay.post((pid, node), Progress(pid, node, int(value), int(top), cls))
            return
        if kind not in _JOB_EVENTS:
            return
        with self._cond:
            job = self._jobs.get(pid)
            if job is None or job.done:
                return
            job.seen_on_ws = True
            if kind == "execution_start":
                job.started_at = time.monotonic()
                job.start_ts = _number(data.get("timestamp"))
            elif kind == "execution_cached":
                job.saw_cached = True
                job.cached_nodes = tuple(str(n) for n in data.get("nodes") or ())
            elif kind == "executing":
                node = data.get("node")
                if node is None:
                    job.finished_ws = True
                    if job.gap or job.confirm_needed:
                        job.confirm_needed = True  # complete from history: frames were missed
                    else:
                        self._settle(job, source="websocket")
                    self._cond.notify_all()
                else:
                    job.ran_nodes.add(str(node))
                    job.current_node = str(node)
            elif kind == "executed":
                node = data.get("node")
                output = data.get("output")
                if node is not None and isinstance(output, Mapping):
                    images = _images(output)
                    if images:
                        job.outputs[str(node)] = images
            elif kind == "execution_success":
                job.success_ts = _number(data.get("timestamp"))
            elif kind == "execution_error":
                job.error = data
            elif kind == "execution_interrupted":
                job.interrupted = data

    def _settle(self, job: _Job, *, source: str) -> None:
        """Turn a finished job's recorded events into its outcome (caller holds the lock)."""
        if job.done:
            return
        host = self.host
        if job.error is not None:
            err = job.error
            node_id, node_type = str(err.get("node_id", "?")), str(err.get("node_type", "?"))
            etype = str(err.get("exception_type", "Exception"))
            emsg = str(err.get("exception_message", "")).strip()
            trace = [str(t) for t in err.get("traceback") or () if str(t).startswith("File")]
            where = f"\n  last frames: {' | '.join(trace[-2:])}" if trace else ""
            pid = job.prompt_id

            def failed() -> ComfyUIError:
                return GenerationFailedError(
                    f"ComfyUI at {host} failed prompt {pid} in node {node_id} ({node_type}): "
                    f"{etype}: {emsg}{where}",
                    host=host,
                    node_id=node_id,
                    node_type=node_type,
                    exception_type=etype,
                    hint="the server's console has the full traceback; a loader failing "
                    "usually means a corrupt or mismatched model file",
                )

            job.failure = failed
        elif job.interrupted is not None:
            info = job.interrupted
            node_id, node_type = str(info.get("node_id", "?")), str(info.get("node_type", "?"))
            pid = job.prompt_id

            def interrupted() -> ComfyUIError:
                return GenerationInterruptedError(
                    f"prompt {pid} was interrupted on {host} in node {node_id} ({node_type})",
                    host=host,
                )

            job.failure = interrupted
        else:
            server_seconds = None
            if job.start_ts is not None and job.success_ts is not None:
                server_seconds = max(0.0, (job.success_ts - job.start_ts) / 1000.0)
            if source == "websocket" and not job.gap:
                fully = job.saw_cached and not job.ran_nodes
            else:
                fully = bool(job.graph) and set(job.graph or ()) <= set(job.cached_nodes)
            job.completion = Completion(
                prompt_id=job.prompt_id,
                outputs=dict(job.outputs),
                cached_nodes=job.cached_nodes,
                server_seconds=server_seconds,
                fully_cached=fully,
                source=source,
            )

    # -- history ---------------------------------------------------------------------------

    def _history_entry(self, prompt_id: str) -> dict[str, Any] | None:
        """The finished prompt's history entry, or None while it is unknown or unfinished."""
        path = f"/history/{quote(prompt_id, safe='')}"
        what = f"GET {path}"
        reply = self._expect_dict(self._get_json(path, what), what)
        entry = reply.get(prompt_id)
        return entry if isinstance(entry, dict) else None

    def _settle_from_history(self, job: _Job, entry: Mapping[str, Any]) -> None:
        status = entry.get("status") if isinstance(entry.get("status"), Mapping) else {}
        assert isinstance(status, Mapping)
        with self._cond:
            if job.done:
                return
            job.finished_ws = True
            for message in status.get("messages") or ():
                if not (isinstance(message, list) and len(message) == 2):
                    continue
                event, data = message
                if not isinstance(data, dict):
                    continue
                if event == "execution_start":
                    job.start_ts = _number(data.get("timestamp"))
                elif event == "execution_cached":
                    job.saw_cached = True
                    job.cached_nodes = tuple(str(n) for n in data.get("nodes") or ())
                elif event == "execution_success":
                    job.success_ts = _number(data.get("timestamp"))
                elif event == "execution_error":
                    job.error = data
                elif event == "execution_interrupted":
                    job.interrupted = data
            outputs = entry.get("outputs")
            if isinstance(outputs, Mapping):
                for node, ui in outputs.items():
                    images = _images(ui)
                    if images:
                        job.outputs[str(node)] = images
            if (
                status.get("status_str") == "error"
                and job.error is None
                and job.interrupted is None
            ):
                job.error = {
                    "node_id": "?",
                    "node_type": "?",
                    "exception_type": "error",
                    "exception_message": "the server's history marks the prompt as "
                    "failed without saying why",
                }
            self._settle(job, source="history")
            self._cond.notify_all()

    def _check_server(self, job: _Job, *, full: bool) -> None:
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
            self._settle_from_history(job, entry)
            return
        with self._cond:
            now = time.monotonic()
            job.next_poll = now + self._poll_interval
            if full:
                job.next_confirm = now + self._confirm_interval

    # -- waiting ---------------------------------------------------------------------------

    def _deadline(self, job: _Job, wait_start: float, limit: float) -> float:
        if job.started_at is not None:
            return job.started_at + limit
        if self._ws_live():
            return max(wait_start, self._last_activity) + limit
        return wait_start + limit

    def wait(self, prompt_id: str, *, timeout: float | None = None) -> Completion:
        """Block until ``prompt_id`` finishes; return its :class:`Completion`.

        Raises :class:`GenerationFailedError` (``execution_error``),
        :class:`GenerationInterruptedError` (interrupted, or deleted from the queue), or
        :class:`GenerationTimeoutError`, after deleting/interrupting the prompt on the server.

        ``timeout`` (default: the constructor's) bounds the prompt's run: the clock starts
        when the server starts it (seen on the WebSocket or in ``/queue``). While it waits
        in the queue behind other prompts, the client gives up only when the server shows
        no activity for ``timeout`` seconds (or, without a WebSocket, ``timeout`` after this
        call). Any number of threads may wait on different prompts at once.
        """
        limit = self._timeout if timeout is None else float(timeout)
        now = time.monotonic()
        with self._cond:
            self._check_open()
            job = self._jobs.get(prompt_id)
            if job is None:  # not submitted here: follow it through the server
                job = _Job(prompt_id, None, None, submitted_at=now, owned=False, accepted=True)
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

    def _outcome(self, job: _Job) -> Completion:
        if job.failure is not None:
            raise job.failure()
        assert job.completion is not None
        return job.completion

    def _time_out(self, job: _Job, limit: float) -> None:
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

    # -- images ----------------------------------------------------------------------------

    def fetch_image(self, ref: ImageRef) -> bytes:
        """The bytes of an output file through ``GET /view`` with its exact triplet."""
        what = f"GET /view {ref}"
        response = self._send("GET", "/view", what=what, params=ref.params())
        if response.status_code != 200:
            error = self._status_error(response, what)
            if response.status_code == 404:
                error.hint = (
                    "the file is gone from the server's output folder (deleted, or "
                    "temp/ was cleared by a restart); rerun the case"
                )
            raise error
        kind = response.headers.get("content-type", "")
        if kind.startswith(("text/", "application/json")):
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered {kind}, not an image: "
                f"{_excerpt(response.text, 120)}",
                host=self.host,
            )
        return response.content

    def verify_png(
        self,
        data: bytes,
        *,
        expected_graph: Mapping[str, Any] | None,
        ref: ImageRef | None = None,
    ) -> None:
        """Check that ``data`` is a complete PNG and carries the graph that was submitted.

        Every pixel is decoded (:class:`ImageDecodeError` otherwise, naming the ``/view``
        triplet). If the PNG has a tEXt ``prompt`` and ``expected_graph`` is given, they must
        be equal as JSON (titles in ``_meta`` aside), else :class:`ComfyUIProtocolError`.
        """
        what = f"image {ref} from {self.host}" if ref else f"image from {self.host}"
        decoded = decode_png(data, what=what)
        embedded = decoded.text.get("prompt")
        if embedded is None or expected_graph is None:
            return
        diffs = prompt_differences(embedded, expected_graph)
        if diffs is None:
            raise ComfyUIProtocolError(
                f"{what}: its 'prompt' metadata is not a JSON graph", host=self.host
            )
        if diffs:
            raise ComfyUIProtocolError(
                f"{what} was made from another graph than the one submitted:\n  "
                + "\n  ".join(diffs),
                host=self.host,
                hint="another client may have written the same output file; give each case "
                "a unique filename_prefix",
            )

    def result(
        self, prompt_id: str, *, output_node: str | None = None, timeout: float | None = None
    ) -> Generation:
        """Wait for ``prompt_id``, fetch the first image of its output node, verify it.

        ``output_node`` defaults to the one given to :meth:`submit`, else the only output
        node that produced images. ``wall_seconds`` counts from the submit.
        """
        completion = self.wait(prompt_id, timeout=timeout)
        with self._cond:
            job = self._jobs[prompt_id]
        node = output_node or job.output_node
        outputs = dict(completion.outputs)
        if node is None and len(outputs) == 1:
            node = next(iter(outputs))
        if node is None:
            raise ValueError(
                f"prompt {prompt_id} has images from several nodes {sorted(outputs)}; "
                "name the output_node"
            )
        if not outputs.get(node):
            entry = self._history_entry(prompt_id)
            if entry is not None:
                outputs.update(
                    (str(k), _images(v))
                    for k, v in (entry.get("outputs") or {}).items()
                    if _images(v)
                )
        refs = outputs.get(node)
        if not refs:
            raise ComfyUIProtocolError(
                f"ComfyUI at {self.host} finished prompt {prompt_id} without an image from "
                f"output node {node} (images came from nodes {sorted(outputs) or 'none'})",
                host=self.host,
                hint="the output node must be a SaveImage or PreviewImage node",
            )
        ref = refs[0]
        data = self.fetch_image(ref)
        self.verify_png(data, expected_graph=job.graph, ref=ref)
        return Generation(
            prompt_id=prompt_id,
            image=data,
            image_ref=ref,
            wall_seconds=time.monotonic() - job.submitted_at,
            server_seconds=completion.server_seconds,
            cached=node in completion.cached_nodes,
            host=self.host,
        )

    def generate(
        self,
        graph: Mapping[str, Any],
        *,
        output_node: str,
        timeout: float | None = None,
        prompt_id: str | None = None,
        extra_pnginfo: Mapping[str, Any] | None = None,
    ) -> Generation:
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


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
