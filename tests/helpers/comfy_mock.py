"""A scripted ComfyUI for the client's tests: recorded transcripts of real ComfyUI versions,
``MockComfy`` (queue, history and request log behind ``httpx.MockTransport``), and small PNGs.
Shared by tests/test_comfyui_client.py and tests/test_comfyui_ws.py."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .suites import TRANSCRIPTS

__all__ = [
    "HOST",
    "SECRET",
    "TRANSCRIPTS",
    "VERSIONS",
    "Handler",
    "MockComfy",
    "empty",
    "from_recording",
    "history_entry",
    "json_response",
    "png_bytes",
    "recorded",
    "recorded_stats",
    "rename",
    "run_graph",
    "transcript",
]


VERSIONS = ["v0.18.1", "v0.3.64"]
HOST = "http://comfy.test:8188"
SECRET = "Bearer s3cr3t-t0ken"


def transcript(version: str, name: str) -> dict[str, Any]:
    """One recorded scenario, e.g. ``transcript("v0.18.1", "04_run_success")``."""
    data: dict[str, Any] = json.loads((TRANSCRIPTS / version / f"{name}.json").read_text("utf-8"))
    return data


def recorded(version: str, name: str, method: str, path: str) -> dict[str, Any]:
    """The first recorded response to ``method path`` in a transcript."""
    for step in transcript(version, name)["steps"]:
        request = step.get("request", {})
        if request.get("method") == method and request.get("path") == path:
            response: dict[str, Any] = step["response"]
            return response
    raise LookupError(f"{method} {path} not in {version}/{name}")


def rename(value: Any, old: str, new: str) -> Any:
    """``value`` with the prompt id ``old`` replaced by ``new`` everywhere."""
    return json.loads(json.dumps(value).replace(old, new))


def history_entry(version: str, name: str, prompt_id: str) -> dict[str, Any]:
    """The recorded ``/history/{id}`` entry of a run, under ``prompt_id``."""
    for step in transcript(version, name)["steps"]:
        if step.get("request", {}).get("path", "").startswith("/history/"):
            reply = step["response"]["json"]
            (old,) = reply
            entry: dict[str, Any] = rename(reply[old], old, prompt_id)
            return entry
    raise LookupError(name)


def run_graph(version: str = "v0.18.1") -> dict[str, Any]:
    """The model-free graph the 04 recording ran (output node 5, preview node 6)."""
    graph: dict[str, Any] = transcript(version, "04_run_success")["steps"][0]["request"]["json"][
        "prompt"
    ]
    return graph


def png_bytes(graph: Any = None, *, size: tuple[int, int] = (8, 8)) -> bytes:
    """A small valid PNG; with ``graph``, it carries a tEXt ``prompt`` like SaveImage's."""
    info = PngInfo()
    if graph is not None:
        info.add_text("prompt", json.dumps(graph))
        info.add_text("workflow", json.dumps({"note": "test"}))
    buffer = io.BytesIO()
    Image.new("RGB", size, (40, 120, 200)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def json_response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


def empty(status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=b"")


def from_recording(response: dict[str, Any]) -> httpx.Response:
    if "json" in response:
        return json_response(response["status"], response["json"])
    return httpx.Response(response["status"], content=response.get("body_text", "").encode())


Handler = Callable[[httpx.Request], httpx.Response]


class MockComfy:
    """A scripted ComfyUI for httpx.MockTransport: a queue, a history, and a request log.

    POST /prompt queues the posted id; ``finish(id)`` (or ``auto_finish_after`` history
    polls) moves it into the history with the entry of recording ``entry_from``. Any route
    can be overridden with ``routes[(method, path)] = handler``; ``prefix`` routes match a
    path prefix.
    """

    def __init__(self, version: str = "v0.18.1") -> None:
        self.version = version
        self.lock = threading.Lock()
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], Handler] = {}
        self.running: list[str] = []
        self.pending: list[str] = []
        self.history: dict[str, dict[str, Any]] = {}
        self.graphs: dict[str, Any] = {}
        self.entry_from = "04_run_success"
        self.auto_finish_after: int | None = 1
        self.polls: dict[str, int] = {}
        self.image: Callable[[str], bytes] | None = None

    # -- driving -------------------------------------------------------------------------
    def finish(self, prompt_id: str, entry: dict[str, Any] | None = None) -> None:
        with self.lock:
            self._finish(prompt_id, entry)

    def _finish(self, prompt_id: str, entry: dict[str, Any] | None = None) -> None:
        for queue in (self.running, self.pending):
            if prompt_id in queue:
                queue.remove(prompt_id)
        self.history[prompt_id] = entry or history_entry(self.version, self.entry_from, prompt_id)

    def calls(self, method: str, path: str | None = None) -> list[httpx.Request]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r.method == method and (path is None or r.url.path == path)
            ]

    def bodies(self, method: str, path: str) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.calls(method, path)]

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- serving -------------------------------------------------------------------------
    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        path = request.url.path
        handler = self.routes.get((request.method, path))
        if handler is None:
            for (method, route), fn in self.routes.items():
                if method == request.method and route.endswith("*") and path.startswith(route[:-1]):
                    handler = fn
                    break
        if handler is not None:
            return handler(request)
        return self.default(request)

    def default(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        if (method, path) == ("GET", "/system_stats"):
            return from_recording(
                recorded(self.version, "01_system_and_idle_state", "GET", "/system_stats")
            )
        if (method, path) == ("POST", "/prompt"):
            body = json.loads(request.content)
            pid = body.get("prompt_id") or "server-made-id"
            with self.lock:
                self.pending.append(pid)
                self.graphs[pid] = body["prompt"]
            return json_response(200, {"prompt_id": pid, "number": 1, "node_errors": {}})
        if method == "GET" and path.startswith("/history/"):
            pid = path.removeprefix("/history/")
            with self.lock:
                self.polls[pid] = self.polls.get(pid, 0) + 1
                if (
                    pid not in self.history
                    and self.auto_finish_after is not None
                    and self.polls[pid] > self.auto_finish_after
                    and pid in self.graphs
                ):
                    self._finish(pid)
                entry = self.history.get(pid)
            return json_response(200, {pid: entry} if entry else {})
        if (method, path) == ("GET", "/queue"):
            with self.lock:
                running = [[0, p, {}, {}, ["5"]] for p in self.running]
                pending = [[i + 1, p, {}, {}, ["5"]] for i, p in enumerate(self.pending)]
            return json_response(200, {"queue_running": running, "queue_pending": pending})
        if (method, path) == ("POST", "/queue"):
            body = json.loads(request.content)
            with self.lock:
                for pid in body.get("delete", []):
                    if pid in self.pending:
                        self.pending.remove(pid)
            return empty()
        if (method, path) in (("POST", "/interrupt"), ("POST", "/free")):
            return empty()
        if (method, path) == ("GET", "/view"):
            name = request.url.params.get("filename", "")
            with self.lock:
                graph = next(
                    (self.graphs[p] for p in self.history if p in self.graphs), run_graph()
                )
            data = self.image(name) if self.image else png_bytes(graph)
            return httpx.Response(200, content=data, headers={"content-type": "image/png"})
        return empty(404)


def recorded_stats(version: str = "v0.18.1") -> dict[str, Any]:
    """The /system_stats body a real ComfyUI sent (CPU server), from the recorded transcript."""
    steps = json.loads((TRANSCRIPTS / version / "01_system_and_idle_state.json").read_text())
    body = steps["steps"][0]["response"]["json"]
    assert isinstance(body, dict)
    return body
