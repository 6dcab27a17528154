"""Plain httpx + websockets helpers for the contract suite (not the plugin's client).

They talk to whatever ``ZIMAGE_CONTRACT_HOST`` names, or to a FakeComfyUI, and only use graphs
that need no model files: EmptyImage -> the built-in ``pixel_space`` VAE -> SaveImage, as in
the recordings of ``tests/transcripts/``.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from PIL import Image
from websockets.sync.client import ClientConnection, connect

RUN_TIMEOUT = 60.0


def model_free_graph(
    color: int, prefix: str, size: int = 64, preview: bool = True
) -> dict[str, Any]:
    """The graph of recording 04: EmptyImage -> VAEEncode/VAEDecodeTiled -> SaveImage (+Preview)."""
    graph: dict[str, Any] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": size, "height": size, "batch_size": 1, "color": color},
        },
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["2", 0]}},
        "4": {
            "class_type": "VAEDecodeTiled",
            "inputs": {
                "samples": ["3", 0],
                "vae": ["2", 0],
                "tile_size": 64,
                "overlap": 0,
                "temporal_size": 64,
                "temporal_overlap": 8,
            },
        },
        "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": prefix}},
    }
    if preview:
        graph["6"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    return graph


def slow_graph(color: int, prefix: str = "zq_contract/slow") -> dict[str, Any]:
    """A 4096x4096 tiled decode: seconds of interruptible work on a CPU (recording 09)."""
    graph = model_free_graph(color, prefix, size=4096, preview=False)
    return graph


def unique_color() -> int:
    return uuid.uuid4().int & 0xFFFFFF


def tag(frame: dict[str, Any]) -> str:
    """A frame as the recordings' ``ws_type_sequence`` writes it: ``executing(4)``, ..."""
    if frame.get("kind") == "binary":
        return f"binary(event_type={frame['event_type']})"
    kind = frame["type"]
    data = frame.get("data", {})
    if kind in ("executing", "executed", "progress"):
        return f"{kind}({data.get('node')})"
    return str(kind)


def tags(frames: list[dict[str, Any]]) -> list[str]:
    return [tag(f) for f in frames]


def expected_run_tags(
    order: list[str],
    cached: list[str],
    *,
    outputs: set[str],
    ui_nodes: set[str],
    progress: dict[str, int],
) -> list[str]:
    """The frames a client-bound run sends after ``execution_cached`` (recording 04/05).

    ``order`` is the execution order of all nodes; cached outputs replay ``executed``, other
    cached nodes send nothing; ``progress`` maps a node to its number of progress frames.
    """
    out: list[str] = []
    for node in order:
        if node in cached:
            if node in outputs:
                out += [f"executed({node})", "progress_state"]
            continue
        out += ["progress_state", f"executing({node})"]
        for _ in range(progress.get(node, 0)):
            out += ["progress_state", f"progress({node})"]
        if node in ui_nodes:
            out.append(f"executed({node})")
        out.append("progress_state")
    return [*out, "execution_success", "status", "executing(None)"]


@dataclass
class Socket:
    """A WebSocket to /ws; text frames are decoded, binary ones summarised."""

    conn: ClientConnection
    sid: str
    greeting: dict[str, Any]
    frames: list[dict[str, Any]] = field(default_factory=list)

    def recv(self, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
        message = self.conn.recv(timeout=timeout)
        if isinstance(message, bytes):
            event = int.from_bytes(message[:4], "big")
            frame: dict[str, Any] = {"kind": "binary", "event_type": event, "raw": message}
        else:
            frame = json.loads(message)
        self.frames.append(frame)
        return frame

    def until(self, predicate: Any, timeout: float = RUN_TIMEOUT) -> list[dict[str, Any]]:
        """Frames received until (and including) the first matching one."""
        deadline = time.monotonic() + timeout
        start = len(self.frames)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching frame; got {tags(self.frames[start:])}")
            frame = self.recv(timeout=left)
            if predicate(frame):
                return self.frames[start:]

    def until_done(self, prompt_id: str, timeout: float = RUN_TIMEOUT) -> list[dict[str, Any]]:
        """Frames until ``executing`` with ``node: null`` for ``prompt_id`` (the safe signal)."""
        return self.until(
            lambda f: (
                f.get("type") == "executing"
                and f["data"].get("node") is None
                and f["data"].get("prompt_id") == prompt_id
            ),
            timeout,
        )

    def drain(self, quiet: float, limit: float = 30.0) -> list[dict[str, Any]]:
        """Frames already in flight: read until nothing arrives for ``quiet`` seconds."""
        start = len(self.frames)
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                self.recv(timeout=quiet)
            except TimeoutError:
                break
        return self.frames[start:]

    def silent(self, timeout: float) -> bool:
        """True if nothing arrives within ``timeout`` seconds."""
        try:
            self.recv(timeout=timeout)
        except TimeoutError:
            return True
        return False


@dataclass
class Target:
    """The ComfyUI under test: a real host, or a FakeComfyUI (``fake`` is then set)."""

    base_url: str
    http: httpx.Client
    stack: contextlib.ExitStack
    fake: Any = None

    @property
    def is_fake(self) -> bool:
        return self.fake is not None

    @property
    def ws_base(self) -> str:
        return "ws" + self.base_url[len("http") :] + "/ws"

    @property
    def version(self) -> str:
        return str(self.http.get("/system_stats").json()["system"]["comfyui_version"])

    @property
    def modern(self) -> bool:
        return not self.version.startswith("0.3.")

    def socket(self, client_id: str | None = None, *, feature_flags: bool = False) -> Socket:
        url = self.ws_base if client_id is None else f"{self.ws_base}?clientId={client_id}"
        conn = self.stack.enter_context(connect(url, max_size=None))
        greeting = json.loads(conn.recv(timeout=10))
        socket = Socket(conn, greeting["data"]["sid"], greeting)
        if feature_flags:
            conn.send(
                json.dumps({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
            )
        return socket

    def submit(self, graph: dict[str, Any], **fields: Any) -> httpx.Response:
        return self.http.post("/prompt", json={"prompt": graph, **fields})

    def queue_ok(self, graph: dict[str, Any], **fields: Any) -> str:
        response = self.submit(graph, **fields)
        assert response.status_code == 200, response.text
        prompt_id: str = response.json()["prompt_id"]
        return prompt_id

    def history(self, prompt_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get(f"/history/{prompt_id}").json()
        return data

    def wait_history(self, prompt_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
        """Poll /history/{id} until it is not ``{}`` (for jobs without a client_id)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.history(prompt_id)
            if data:
                entry: dict[str, Any] = data[prompt_id]
                return entry
            time.sleep(0.05)
        raise TimeoutError(f"{prompt_id} not in history after {timeout} s")

    def view(self, image: dict[str, str]) -> httpx.Response:
        return self.http.get("/view", params=image)

    def wait_idle(self, timeout: float = RUN_TIMEOUT) -> None:
        """Poll GET /prompt until nothing is queued or running."""
        deadline = time.monotonic() + timeout
        while self.http.get("/prompt").json()["exec_info"]["queue_remaining"]:
            if time.monotonic() > deadline:
                raise TimeoutError("server still busy")
            time.sleep(0.05)


def png_info(data: bytes) -> dict[str, Any]:
    """Size, mode and tEXt chunks of a PNG (raises if it does not decode)."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        text = dict(getattr(image, "text", {}))
        return {"size": image.size, "mode": image.mode, "text": text}


@contextlib.contextmanager
def target_at(base_url: str) -> Iterator[Target]:
    with contextlib.ExitStack() as stack:
        http = stack.enter_context(httpx.Client(base_url=base_url, timeout=30.0))
        yield Target(base_url, http, stack)
