"""The fake's HTTP + WebSocket front: aiohttp routes in a background thread with its own loop.

Real ComfyUI is an aiohttp application, so using aiohttp here gives the same framework-level
behaviour for free (a non-JSON body on ``/prompt`` is aiohttp's own 500 text/plain reply).
Every route is also served under ``/api``. Every request is logged; an exception raised by a
handler (a bug in the fake, not a simulated server error) is recorded and re-raised in the test
thread by ``FakeComfyUI.check_errors()``, as pytest-httpserver does.

The WebSocket hub follows ``server.py`` of ComfyUI: frames go through one publish queue, a
private frame goes only to the socket registered under the job's ``client_id``, a reconnect with
the same ``clientId`` replaces the registration (the old socket goes silent), and, as in the real
server, closing that old socket afterwards unregisters the new one too.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import ipaddress
import json
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image

from .compat import SENSITIVE_EXTRA_DATA_KEYS, VersionProfile
from .executor import Executor, QueueItem
from .faults import Faults, HTTPFault, ServerMode, ViewFault
from .files import FileStore
from .hostile import deflate_bomb, echo_headers_body, padded_stream, websocket_frame_header
from .jobs import JOB_STATUSES, get_all_jobs, get_job
from .log import RecordedRequest
from .models import VRAM_BASELINE, ModelRegistry
from .nodes import NodeCatalog
from .validation import validate_prompt

__all__ = ["DeviceInfo", "FakeServer", "RecordedRequest"]

_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self'; "
    "connect-src 'self' data:; frame-src 'self'; object-src 'self';"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_RECORD = web.RequestKey("zimage_record", RecordedRequest)


class _RealServerCrash(Exception):
    """Raised where real ComfyUI raises too: aiohttp answers 500, nothing is recorded."""


@dataclass(frozen=True)
class DeviceInfo:
    """What ``/system_stats`` reports about the torch device."""

    name: str
    vram_total: int
    vram_free: int
    ram_total: int
    ram_free: int

    @property
    def type(self) -> str:
        return self.name.split(":", 1)[0] if ":" in self.name else self.name

    @property
    def index(self) -> int | None:
        head = self.name.split(" ", 1)[0]
        if ":" in head:
            with contextlib.suppress(ValueError):
                return int(head.split(":", 1)[1])
        return None


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    # "/api/x" -> "/x"; "/api/jobs" exists only with its prefix (and again as "/api/api/jobs")
    if canonical.startswith("/api/") and not canonical.startswith("/api/jobs"):
        return canonical[4:]
    return canonical


class FakeServer:
    """The aiohttp application and the thread running it."""

    def __init__(
        self,
        *,
        executor: Executor,
        catalog: NodeCatalog,
        models: ModelRegistry,
        files: FileStore,
        faults: Faults,
        profile: VersionProfile,
        device: DeviceInfo,
        disable_metadata: bool,
        record_error: Callable[[BaseException], None],
        host: str = "127.0.0.1",
        port: int = 0,
        pytorch_version: str = "2.14.1+cu130",
    ) -> None:
        self.executor = executor
        self.pytorch_version = pytorch_version
        self.catalog = catalog
        self.models = models
        self.files = files
        self.faults = faults
        self.profile = profile
        self.device = device
        self.disable_metadata = disable_metadata
        self.record_error = record_error
        self.host = host
        self.port = port
        self.number = 0
        self.requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.socket_requests: dict[int, web.Request] = {}
        self.sockets_metadata: dict[str, dict[str, Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._messages: asyncio.Queue[tuple[str, Any, str | None]] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._closing: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._silent: asyncio.Server | None = None
        self._silent_writers: set[asyncio.StreamWriter] = set()
        self._ticker: asyncio.Task[None] | None = None

    # -- lifecycle (test thread) -----------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-comfyui-http", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("FakeComfyUI did not start listening in time")
        if self._startup_error is not None:
            raise RuntimeError("FakeComfyUI failed to start") from self._startup_error
        self.faults.set_hooks(self)
        self.executor.outbox = self
        if self.faults.mode != "serving":  # armed before start
            self.set_mode(self.faults.mode)

    def stop(self, timeout: float = 15.0) -> None:
        self.faults.set_hooks(None)
        loop = self._loop
        if loop is None or self._thread is None:
            return
        if not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            with contextlib.suppress(Exception):
                future.result(timeout)
            loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._startup())
        except BaseException as exc:
            self._startup_error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            _drain_and_close(loop)

    async def _startup(self) -> None:
        self._messages = asyncio.Queue()
        self._closing = asyncio.Event()
        self._publisher = asyncio.get_running_loop().create_task(self._publish_loop())
        self._ticker = asyncio.get_running_loop().create_task(self._status_ticker())
        app = web.Application(
            client_max_size=104857600,
            middlewares=[
                self._record_middleware,
                self._error_middleware,
                self._fault_middleware,
                self._origin_middleware,
                self._csp_middleware,
            ],
        )
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port)
        await self._site.start()
        address = self._runner.addresses[0]
        self.port = int(address[1])

    async def _shutdown(self) -> None:
        assert self._closing is not None
        self._closing.set()
        for ws in list(self.sockets.values()):
            with contextlib.suppress(Exception):
                await ws.close()
        for task in (self._publisher, self._ticker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._close_silent()
        if self._runner is not None:
            leftovers = self._connection_transports()
            await self._runner.cleanup()
            for transport in leftovers:  # a handler that outlived shutdown_timeout
                transport.abort()

    # -- connection modes and restarts (ServerHooks, called from any thread but the loop's) ------

    def set_mode(self, mode: ServerMode) -> None:
        """Serve HTTP, refuse connections, or accept them and never answer (silent)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError, TimeoutError, asyncio.CancelledError):
            asyncio.run_coroutine_threadsafe(self._listen(mode), loop).result(10.0)

    def lose_state(self) -> None:
        """A restart: the queue, history, caches, loaded models and queue number are gone."""
        self.number = 0
        self.executor.reset()

    async def _listen(self, mode: ServerMode) -> None:
        assert self._runner is not None
        if mode != "serving" and self._site is not None:
            await self._site.stop()
            self._site = None
        if mode != "silent":
            await self._close_silent()
        if mode != "serving":
            for transport in self._connection_transports():
                transport.abort()  # a restart drops sockets at once: no graceful flush
            server = self._runner.server
            if server is not None:
                for connection in list(server.connections):
                    connection.force_close()
            for request in list(self.socket_requests.values()):
                if request.transport is not None:
                    request.transport.abort()
        if mode == "serving" and self._site is None:
            self._site = web.TCPSite(self._runner, self.host, self.port)
            await self._site.start()
        elif mode == "silent" and self._silent is None:
            self._silent = await asyncio.start_server(self._silent_client, self.host, self.port)

    def _connection_transports(self) -> list[asyncio.Transport]:
        server = self._runner.server if self._runner is not None else None
        if server is None:
            return []
        found = (connection.transport for connection in server.connections)
        return [t for t in found if isinstance(t, asyncio.Transport) and not t.is_closing()]

    async def _silent_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Read and discard everything; never write a byte (a wedged server or a black hole)."""
        self._silent_writers.add(writer)
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._silent_writers.discard(writer)
            writer.close()

    async def _close_silent(self) -> None:
        if self._silent is None:
            return
        self._silent.close()
        for writer in list(self._silent_writers):
            writer.transport.abort()
        self._silent_writers.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._silent.wait_closed(), 2.0)
        self._silent = None

    async def _status_ticker(self) -> None:
        """While ``hold_queue`` keeps the head prompt pending, broadcast ``status`` frames."""
        last = 0.0
        while True:
            await asyncio.sleep(0.02)
            every = self.executor.held_status_every
            if every is None or time.monotonic() - last < every:
                continue
            last = time.monotonic()
            data = {"status": {"exec_info": {"queue_remaining": self.executor.queue.remaining()}}}
            await self._deliver("json", {"type": "status", "data": data}, None)

    # -- Outbox (called from the worker thread) ----------------------------------------------------

    def _enqueue(self, kind: str, payload: Any, sid: str | None) -> None:
        loop, queue = self._loop, self._messages
        if loop is None or queue is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(queue.put_nowait, (kind, payload, sid))

    def send_json(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        self._enqueue("json", {"type": event, "data": data}, sid)

    def send_bytes(self, frame: bytes, sid: str | None) -> None:
        self._enqueue("bytes", frame, sid)

    def drop(self, sid: str | None) -> None:
        self._enqueue("drop", None, sid)

    def bomb(self, sid: str | None, inflated_size: int) -> None:
        self._enqueue("bomb", inflated_size, sid)

    def supports_preview_metadata(self, sid: str | None) -> bool:
        if sid is None:
            return False
        flags = self.sockets_metadata.get(sid, {}).get("feature_flags", {})
        return bool(isinstance(flags, dict) and flags.get("supports_preview_metadata"))

    async def _publish_loop(self) -> None:
        assert self._messages is not None
        while True:
            kind, payload, sid = await self._messages.get()
            try:
                await self._deliver(kind, payload, sid)
            except Exception as exc:
                self.record_error(exc)

    async def _deliver(self, kind: str, payload: Any, sid: str | None) -> None:
        if sid is None:
            targets = list(self.sockets.values())
        elif sid in self.sockets:
            targets = [self.sockets[sid]]
        else:
            targets = []
        for ws in targets:
            request = self.socket_requests.get(id(ws))
            transport = request.transport if request is not None else None
            if kind == "drop":
                if transport is not None:
                    transport.abort()
                continue
            if kind == "bomb":
                if transport is not None and not ws.closed:
                    self._send_bomb(ws, transport, int(payload))
                continue
            if ws.closed:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                if kind == "json":
                    await ws.send_json(payload)
                else:
                    await ws.send_bytes(payload)

    @staticmethod
    def _send_bomb(ws: web.WebSocketResponse, transport: asyncio.BaseTransport, size: int) -> None:
        """One text frame, compressed by hand when the client accepted permessage-deflate (so
        it inflates to ``size``), a plain 2 MB one otherwise; then close the connection: the
        client's inflate window no longer matches our compressor's, so nothing may follow."""
        assert isinstance(transport, asyncio.WriteTransport)
        if ws.compress:
            payload = deflate_bomb(size)
            frame = websocket_frame_header(len(payload)) + payload
        else:
            text = json.dumps({"type": "status", "data": {"padding": " " * (2 << 20)}})
            payload = text.encode("ascii")
            frame = websocket_frame_header(len(payload), compressed=False) + payload
        transport.write(frame)
        transport.close()  # flushes the frame first, unlike abort()

    # -- middlewares --------------------------------------------------------------------------------

    @web.middleware
    async def _record_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        body = b""
        parsed: Any = None
        if request.can_read_body and not request.content_type.startswith("multipart/"):
            body = await request.read()
            with contextlib.suppress(ValueError):
                parsed = json.loads(body) if body else None
        record = request[_RECORD] = RecordedRequest(
            method=request.method,
            path=request.path,
            route=_template(request),
            query=dict(request.query),
            json=parsed,
            body=body,
            headers=dict(request.headers),
            time=time.monotonic(),
        )
        with self._requests_lock:
            self.requests.append(record)
        return await handler(request)

    @web.middleware
    async def _error_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (web.HTTPException, asyncio.CancelledError, _RealServerCrash):
            raise
        except Exception as exc:
            self.record_error(exc)
            raise

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = request.get(_RECORD)
        fault = self.faults.take_http(request.method, _template(request), request.path, record)
        if fault is not None:
            await self._wait_out(fault)
            if fault.status is not None:
                body = fault.body
                if fault.echo_headers:
                    body = echo_headers_body(fault.status, request.headers)
                return web.Response(status=fault.status, text=body or None)
        return await handler(request)

    async def _wait_out(self, fault: HTTPFault) -> None:
        """Sleep through a stall, or until a hang is released (or the server stops)."""
        assert self._closing is not None
        if fault.stall > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.stall)
        while fault.hang and not fault.released.is_set() and not self._closing.is_set():
            await asyncio.sleep(0.02)

    @web.middleware
    async def _origin_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if self.profile.modern and request.headers.get("Sec-Fetch-Site") == "cross-site":
            return web.Response(status=403)
        host_header = request.headers.get("Host")
        origin = request.headers.get("Origin")
        if host_header is not None and origin is not None:
            host_domain = host_header.lower()
            parsed = urllib.parse.urlparse(origin)
            origin_domain: str | None = parsed.netloc.lower()
            host_parsed = urllib.parse.urlsplit("//" + host_domain)
            if parsed.port is None:
                host_domain = host_parsed.hostname or ""
            if host_parsed.port is None:
                origin_domain = parsed.hostname
            if (
                _is_loopback(host_parsed.hostname)
                and host_domain
                and origin_domain
                and host_domain != origin_domain
            ):
                return web.Response(status=403)
        if request.method == "OPTIONS":
            return web.Response()
        return await handler(request)

    @web.middleware
    async def _csp_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if self.profile.modern and not response.prepared:
            response.headers["Content-Security-Policy"] = _CSP
        return response

    # -- routes --------------------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/ws", self.websocket),
            ("GET", "/", self.root),
            ("GET", "/embeddings", self.embeddings),
            ("GET", "/models", self.model_types),
            ("GET", "/models/{folder}", self.model_files),
            ("GET", "/view", self.view),
            ("GET", "/view_metadata/{folder_name}", self.view_metadata),
            ("GET", "/system_stats", self.system_stats),
            ("GET", "/features", self.features),
            ("GET", "/prompt", self.get_prompt),
            ("GET", "/object_info", self.object_info),
            ("GET", "/object_info/{node_class}", self.object_info_node),
            ("GET", "/history", self.get_history),
            ("GET", "/history/{prompt_id}", self.get_history_item),
            ("GET", "/queue", self.get_queue),
            ("POST", "/prompt", self.post_prompt),
            ("POST", "/queue", self.post_queue),
            ("POST", "/interrupt", self.post_interrupt),
            ("POST", "/free", self.post_free),
            ("POST", "/history", self.post_history),
            ("POST", "/upload/image", self.upload_image),
        ]
        if self.profile.has_jobs_api:
            routes += [
                ("GET", "/api/jobs", self.get_jobs),
                ("GET", "/api/jobs/{job_id}", self.get_job),
            ]
        for method, path, handler in routes:
            app.router.add_route(method, "/api" + path, handler)
        for method, path, handler in routes:
            app.router.add_route(method, path, handler)

    async def _json(self, request: web.Request) -> Any:
        try:
            return await request.json()
        except ValueError as exc:  # json.JSONDecodeError: the real server answers 500
            raise _RealServerCrash("body is not JSON") from exc

    # WebSocket ------------------------------------------------------------------------------------

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId", "")
        if sid:
            self.sockets.pop(sid, None)
        else:
            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        self.socket_requests[id(ws)] = request
        self.sockets_metadata[sid] = {"feature_flags": {}}
        try:
            queue_info = {"exec_info": {"queue_remaining": self.executor.queue.remaining()}}
            await ws.send_json({"type": "status", "data": {"status": queue_info, "sid": sid}})
            if self.executor.client_id == sid and self.executor.last_node_id is not None:
                await ws.send_json(
                    {"type": "executing", "data": {"node": self.executor.last_node_id}}
                )
            first_message = True
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if first_message and isinstance(data, dict) and data.get("type") == "feature_flags":
                    flags = data.get("data", {})
                    self.sockets_metadata.setdefault(sid, {})["feature_flags"] = flags
                    await ws.send_json({"type": "feature_flags", "data": self.profile.features()})
                first_message = False
        finally:
            self.sockets.pop(sid, None)
            self.sockets_metadata.pop(sid, None)
            self.socket_requests.pop(id(ws), None)
        return ws

    # Simple GETs --------------------------------------------------------------------------------

    async def root(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html><body>FakeComfyUI</body></html>", content_type="text/html")

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        files = self.models.snapshot().get("embeddings", [])
        return web.json_response([name.rsplit(".", 1)[0] for name in files])

    async def model_types(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.profile.model_folders())

    async def model_files(self, request: web.Request) -> web.StreamResponse:
        folder = request.match_info["folder"]
        if folder not in self.profile.model_folders():
            return web.Response(status=404)
        return web.json_response(sorted(self.models.snapshot().get(folder, [])))

    async def system_stats(self, request: web.Request) -> web.StreamResponse:
        argv = ["main.py", "--listen", self.host, "--port", str(self.port)]
        if self.device.type == "cpu":
            argv.insert(1, "--cpu")
        if self.disable_metadata:
            argv.append("--disable-metadata")
        report = self.faults.system_report
        name = report.device_name or self.device.name
        device = DeviceInfo(name, report.vram_total or self.device.vram_total, 0, 0, 0)
        # what torch holds: the loaded models plus the sampler's working set (see models.py)
        reserved = self.executor.vram_in_use()
        free = max(0, device.vram_total - VRAM_BASELINE - reserved)
        stats = {
            "system": {
                "os": self.profile.os_name,
                "ram_total": self.device.ram_total,
                "ram_free": self.device.ram_free,
                "comfyui_version": report.comfyui_version or self.profile.version,
                "required_frontend_version": self.profile.required_frontend_version,
                "installed_templates_version": None,
                "required_templates_version": self.profile.required_templates_version,
                "python_version": sys.version,
                "pytorch_version": report.pytorch_version or self.pytorch_version,
                "embedded_python": False,
                "argv": argv,
            },
            "devices": [
                {
                    "name": device.name,
                    "type": device.type,
                    "index": device.index,
                    "vram_total": device.vram_total,
                    "vram_free": free,
                    "torch_vram_total": reserved,
                    "torch_vram_free": 0,
                }
            ],
        }
        return web.json_response(stats)

    async def features(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.profile.features())

    async def get_prompt(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"exec_info": {"queue_remaining": self.executor.queue.remaining()}}
        )

    async def object_info(self, request: web.Request) -> web.StreamResponse:
        info = self.catalog.object_info()
        return web.json_response({k: self.profile.strip_object_info(v) for k, v in info.items()})

    async def object_info_node(self, request: web.Request) -> web.StreamResponse:
        node_class = request.match_info["node_class"]
        if not self.catalog.has(node_class):
            return web.json_response({})
        info = self.profile.strip_object_info(self.catalog.spec(node_class))
        return web.json_response({node_class: info})

    # Queue and history ----------------------------------------------------------------------

    async def get_queue(self, request: web.Request) -> web.StreamResponse:
        running, pending = self.executor.queue.snapshot()
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def get_history(self, request: web.Request) -> web.StreamResponse:
        try:
            max_items = request.query.get("max_items")
            offset = request.query.get("offset")
            history = self.executor.queue.get_history(
                max_items=int(max_items) if max_items is not None else None,
                offset=int(offset) if offset is not None else -1,
            )
        except ValueError as exc:
            raise _RealServerCrash("bad max_items/offset") from exc
        return web.json_response(history)

    async def get_history_item(self, request: web.Request) -> web.StreamResponse:
        prompt_id = request.match_info["prompt_id"]
        return web.json_response(self.executor.queue.get_history(prompt_id=prompt_id))

    async def post_queue(self, request: web.Request) -> web.StreamResponse:
        data = await self._json(request)
        if not isinstance(data, dict):
            raise _RealServerCrash("body is not an object")
        if data.get("clear"):
            self.executor.queue.wipe()
        for prompt_id in data.get("delete", []) or []:
            self.executor.queue.delete(prompt_id)
        return web.Response(status=200)

    async def post_history(self, request: web.Request) -> web.StreamResponse:
        data = await self._json(request)
        if not isinstance(data, dict):
            raise _RealServerCrash("body is not an object")
        if data.get("clear"):
            self.executor.queue.wipe_history()
        for prompt_id in data.get("delete", []) or []:
            self.executor.queue.delete_history(prompt_id)
        return web.Response(status=200)

    async def post_interrupt(self, request: web.Request) -> web.StreamResponse:
        try:
            data = await request.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            raise _RealServerCrash("body is not an object")
        self.executor.interrupt(data.get("prompt_id"))
        return web.Response(status=200)

    async def post_free(self, request: web.Request) -> web.StreamResponse:
        data = await self._json(request)
        if not isinstance(data, dict):
            raise _RealServerCrash("body is not an object")
        unload_models = data.get("unload_models", False)
        free_memory = data.get("free_memory", False)
        if unload_models:
            self.executor.queue.set_flag("unload_models", unload_models)
        if free_memory:
            self.executor.queue.set_flag("free_memory", free_memory)
        return web.Response(status=200)

    async def post_prompt(self, request: web.Request) -> web.StreamResponse:
        data = await self._json(request)
        if not isinstance(data, dict):
            self.number += 1
            error = {"type": "no_prompt", "message": "No prompt provided",
                     "details": "No prompt provided", "extra_info": {}}  # fmt: skip
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        if "number" in data:
            try:
                number: float = float(data["number"])
            except (TypeError, ValueError) as exc:
                raise _RealServerCrash("bad number") from exc
        else:
            number = self.number
            if data.get("front"):
                number = -number
            self.number += 1
        if "prompt" not in data:
            error = {"type": "no_prompt", "message": "No prompt provided",
                     "details": "No prompt provided", "extra_info": {}}  # fmt: skip
            return web.json_response({"error": error, "node_errors": {}}, status=400)

        prompt = copy.deepcopy(data["prompt"])
        prompt_id = str(data["prompt_id"]) if "prompt_id" in data else str(uuid.uuid4())
        if not isinstance(prompt, dict):
            raise _RealServerCrash("prompt is not an object")
        try:
            outcome = validate_prompt(
                prompt, self.catalog, self.profile, data.get("partial_execution_targets")
            )
        except (TypeError, AttributeError, KeyError) as exc:
            raise _RealServerCrash("malformed prompt") from exc
        extra_data = copy.deepcopy(data.get("extra_data", {}))
        if not isinstance(extra_data, dict):
            raise _RealServerCrash("extra_data is not an object")
        if "client_id" in data:
            extra_data["client_id"] = data["client_id"]
        if not outcome.ok:
            return web.json_response(
                {"error": outcome.error, "node_errors": outcome.node_errors}, status=400
            )
        sensitive = {k: extra_data.pop(k) for k in SENSITIVE_EXTRA_DATA_KEYS if k in extra_data}
        if self.profile.adds_create_time:
            extra_data["create_time"] = int(time.time() * 1000)
        item = QueueItem(number, prompt_id, prompt, extra_data, outcome.outputs, sensitive)
        self.executor.queue.put(item)
        return web.json_response(
            {"prompt_id": prompt_id, "number": number, "node_errors": outcome.node_errors}
        )

    # Jobs (0.18.1) --------------------------------------------------------------------------------

    async def get_jobs(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        statuses = None
        if query.get("status"):
            statuses = [s.strip().lower() for s in query["status"].split(",") if s.strip()]
            invalid = [s for s in statuses if s not in JOB_STATUSES]
            if invalid:
                message = (
                    f"Invalid status value(s): {', '.join(invalid)}. "
                    f"Valid values: {', '.join(JOB_STATUSES)}"
                )
                return web.json_response({"error": message}, status=400)
        sort_by = query.get("sort_by", "created_at").lower()
        if sort_by not in ("created_at", "execution_duration"):
            return web.json_response(
                {"error": "sort_by must be 'created_at' or 'execution_duration'"}, status=400
            )
        sort_order = query.get("sort_order", "desc").lower()
        if sort_order not in ("asc", "desc"):
            return web.json_response({"error": "sort_order must be 'asc' or 'desc'"}, status=400)
        limit = None
        if "limit" in query:
            try:
                limit = int(query["limit"])
            except ValueError:
                return web.json_response({"error": "limit must be an integer"}, status=400)
            if limit <= 0:
                return web.json_response({"error": "limit must be a positive integer"}, status=400)
        offset = 0
        if "offset" in query:
            try:
                offset = max(0, int(query["offset"]))
            except ValueError:
                return web.json_response({"error": "offset must be an integer"}, status=400)
        running, pending = self.executor.queue.snapshot()
        history = self.executor.queue.get_history()
        jobs, total = get_all_jobs(
            running,
            pending,
            history,
            statuses=statuses,
            workflow_id=query.get("workflow_id"),
            sort_by=sort_by,
            sort_order=sort_order,
            limit=limit,
            offset=offset,
        )
        pagination = {
            "offset": offset,
            "limit": limit,
            "total": total,
            "has_more": offset + len(jobs) < total,
        }
        return web.json_response({"jobs": jobs, "pagination": pagination})

    async def get_job(self, request: web.Request) -> web.StreamResponse:
        job_id = request.match_info["job_id"]
        running, pending = self.executor.queue.snapshot()
        history = self.executor.queue.get_history(prompt_id=job_id)
        job = get_job(job_id, running, pending, history)
        if job is None:
            return web.json_response({"error": "Job not found"}, status=404)
        return web.json_response(job)

    # Files -------------------------------------------------------------------------------------

    async def view(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        found = self.files.lookup(query.get("filename"), query.get("type"), query.get("subfolder"))
        if found.path is None:
            return web.Response(status=found.status)
        disposition = {"Content-Disposition": f'filename="{found.filename}"'}
        fault = self.faults.take_view_fault(found.filename)
        if fault is not None:
            return await self._faulty_view(request, fault, found.path.read_bytes(), disposition)
        channel = query.get("channel")
        if "preview" in query:
            preview = query["preview"].split(";")
            image_format = preview[0]
            if image_format not in ("webp", "jpeg") or "a" in (channel or ""):
                image_format = "webp"
            quality = int(preview[-1]) if preview[-1].isdigit() else 90
            with Image.open(found.path) as img:
                out = img.convert("RGB") if image_format == "jpeg" or channel == "rgb" else img
                buffer = BytesIO()
                out.save(buffer, format=image_format, quality=quality)
            return web.Response(
                body=buffer.getvalue(), content_type=f"image/{image_format}", headers=disposition
            )
        if channel in ("rgb", "a"):
            with Image.open(found.path) as img:
                if channel == "rgb":
                    out = img.convert("RGB")
                else:
                    alpha = (
                        img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
                    )
                    out = Image.new("RGBA", img.size)
                    out.putalpha(alpha)
                buffer = BytesIO()
                out.save(buffer, format="PNG")
            return web.Response(
                body=buffer.getvalue(), content_type="image/png", headers=disposition
            )
        return web.FileResponse(found.path, headers={**disposition, "Content-Type": "image/png"})

    async def _faulty_view(
        self, request: web.Request, fault: ViewFault, data: bytes, headers: dict[str, str]
    ) -> web.StreamResponse:
        if fault.mode == "truncate":
            return web.Response(
                body=data[: len(data) // 2], content_type="image/png", headers=headers
            )
        if fault.mode == "garbage":
            garbage = uuid.uuid4().bytes * (len(data) // 16 + 1)
            return web.Response(body=garbage, content_type="image/png", headers=headers)
        assert self._closing is not None
        size = fault.size if fault.mode == "huge" else len(data)
        response = web.StreamResponse(headers={**headers, "Content-Type": "image/png"})
        response.content_length = size
        await response.prepare(request)
        if fault.mode == "huge":
            pieces: Any = padded_stream(data, size)
            pause = 0.0
        elif fault.mode == "slow":
            step = max(1, -(-len(data) // 16))
            pieces = (data[i : i + step] for i in range(0, len(data), step))
            pause = fault.seconds / 16
        else:  # trickle
            step = max(1, fault.chunk)
            pieces = (data[i : i + step] for i in range(0, len(data), step))
            pause = fault.seconds
        for piece in pieces:
            if (
                self._closing.is_set()
                or request.transport is None
                or request.transport.is_closing()
            ):
                break
            if pause > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), pause)
            try:
                await response.write(piece)
            except ConnectionError:
                break
        return response

    async def view_metadata(self, request: web.Request) -> web.StreamResponse:
        folder = request.match_info["folder_name"]
        filename = request.query.get("filename")
        if filename is None or not filename.endswith(".safetensors"):
            return web.Response(status=404)
        metadata = self.models.metadata(folder, filename)
        if metadata is None:
            return web.Response(status=404)
        return web.json_response(metadata)

    async def upload_image(self, request: web.Request) -> web.StreamResponse:
        post = await request.post()
        image = post.get("image")
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        overwrite = str(post.get("overwrite", "")) in ("true", "1")
        kind = post.get("type")
        status, reply = self.files.upload(
            str(kind) if kind is not None else None,
            str(post.get("subfolder", "")),
            image.filename,
            image.file.read(),
            overwrite,
        )
        if reply is None:
            return web.Response(status=status)
        return web.json_response(reply)


def _drain_and_close(loop: asyncio.AbstractEventLoop) -> None:
    """Close the loop only after its tasks and socket-closing callbacks have run.

    A transport's socket is closed by a callback scheduled on the loop; closing the loop
    before it runs leaves the socket to the garbage collector, whose ResourceWarning then
    surfaces in some later, unrelated test.
    """
    with contextlib.suppress(Exception):
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        for transport in _open_transports(loop):  # e.g. one whose handler paused reading
            transport.abort()
        for _ in range(3):
            loop.run_until_complete(asyncio.sleep(0))
        loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def _open_transports(loop: asyncio.AbstractEventLoop) -> list[asyncio.Transport]:
    """Every transport of ``loop`` not yet closing. asyncio keeps no list of them, and one
    whose reading a handler paused is not even in the selector: the garbage collector's view
    is the only complete one (a fake's stop is rare enough for that scan)."""
    return [
        obj
        for obj in gc.get_objects()
        if isinstance(obj, asyncio.Transport)
        and getattr(obj, "_loop", None) is loop
        and not obj.is_closing()
    ]
