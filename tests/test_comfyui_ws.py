"""The client's WebSocket side against a real ``websockets`` server replaying recorded frames.

HTTP goes through the MockComfy of test_comfyui_client.py (an httpx.MockTransport); the
WebSocket is a real socket on a free loopback port, so the listener thread, the reconnect
and the handshake headers run for real. Frames are the recorded sequences of
tests/transcripts/ with the recorded prompt ids replaced by the client's own.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from pytest_zimage_quality.comfyui import ComfyUIClient, ImageRef, Progress
from pytest_zimage_quality.comfyui._ws import LatestValueRelay, binary_event
from pytest_zimage_quality.errors import (
    ComfyUIUnreachableError,
    GenerationFailedError,
    GenerationInterruptedError,
    GenerationTimeoutError,
)
from tests.helpers.comfy_mock import (
    SECRET,
    VERSIONS,
    MockComfy,
    png_bytes,
    recorded,
    rename,
    run_graph,
    transcript,
)

Frame = dict[str, Any] | bytes

#: A self-signed certificate for 127.0.0.1 (valid 2000-2100) and its key, for TLS tests only.
TEST_CERT = """\
-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAkxMjcuMC4w
LjEwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBQxEjAQBgNVBAMM
CTEyNy4wLjAuMTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNc212fkYi4zhifB
nSYNCtwP2LL7NzZeNXwyi9OyqdmRlVQp1eGHU7DsAoBpYQye+n5frpjayL8w1Fhv
2B7BWjijXjBcMA8GA1UdEwEB/wQFMAMBAf8wGgYDVR0RBBMwEYcEfwAAAYIJbG9j
YWxob3N0MA4GA1UdDwEB/wQEAwIChDAdBgNVHQ4EFgQU5hOi9bDWkKSlrP96aRGZ
XGuKkw4wCgYIKoZIzj0EAwIDSAAwRQIhAOr40Yh/y76aw7njje6vTYpsqPhGbbxR
30ynGfyJzCarAiBfHyqXFG3RQwmtZ7ej2r4Ip+Xx3N/kE6DYbUs7KyAGIA==
-----END CERTIFICATE-----
"""
TEST_KEY = """\
-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgKD/GqxlhRt2XpGmi
b7fSdybw0PfXkbUbS1eerFmXAuahRANCAATXNtdn5GIuM4YnwZ0mDQrcD9iy+zc2
XjV8MovTsqnZkZVUKdXhh1Ow7AKAaWEMnvp+X66Y2si/MNRYb9gewVo4
-----END PRIVATE KEY-----
"""


class ScriptedSocket:
    """A ``/ws`` endpoint on a free loopback port that the test drives frame by frame."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.cond = threading.Condition()
        self.connections: list[ServerConnection] = []
        self.client_ids: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.refuse = False
        #: plain HTTP GETs answered on the same port: path -> JSON body
        self.http: dict[str, Any] = {}
        self.server: Server = serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process,
            compression=None,
            ssl=ssl_context,
        )
        self.port: int = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _process(self, connection: ServerConnection, request: Request) -> Response | None:
        with self.cond:
            self.headers.append({k.lower(): v for k, v in request.headers.raw_items()})
        if "upgrade" not in {k.lower() for k in request.headers}:
            path = urlsplit(request.path).path
            if path not in self.http:
                return connection.respond(404, "")
            response = connection.respond(200, json.dumps(self.http[path]))
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        if self.refuse:
            return connection.respond(403, "no websockets here\n")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        query = parse_qs(urlsplit(connection.request.path).query)
        client_id = query.get("clientId", [""])[0]
        greeting = {
            "type": "status",
            "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": client_id},
        }
        with contextlib.suppress(ConnectionClosed):  # a client that had its handshake and left
            connection.send(json.dumps(greeting))
        with self.cond:
            self.connections.append(connection)
            self.client_ids.append(client_id)
            self.cond.notify_all()
        for _ in connection:  # ComfyUI ignores what clients send after feature_flags
            pass

    def wait_for_connections(self, count: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.connections) >= count, 10)

    def send(self, frames: list[Frame]) -> None:
        self.wait_for_connections(1)
        with self.cond:
            connection = self.connections[-1]
        for frame in frames:
            connection.send(frame if isinstance(frame, bytes) else json.dumps(frame))

    def drop(self) -> None:
        """Close the newest connection from the server side, as a proxy or restart would."""
        self.wait_for_connections(1)
        with self.cond:
            connection = self.connections[-1]
        connection.close(1011, "going away")

    def close(self) -> None:
        self.server.shutdown()
        with self.cond:
            connections = list(self.connections)
        for connection in connections:
            connection.close()
        self.thread.join(10)
        self.server.socket.close()


@pytest.fixture
def ws() -> Iterator[ScriptedSocket]:
    server = ScriptedSocket()
    yield server
    server.close()


@pytest.fixture
def mock() -> MockComfy:
    comfy = MockComfy()
    comfy.auto_finish_after = None  # completion must come from the socket
    return comfy


def ws_client(mock: MockComfy, port: int, **kwargs: Any) -> ComfyUIClient:
    options: dict[str, Any] = {
        "transport": mock.transport,
        "use_websocket": True,
        "backoff": 0.01,
        "poll_interval": 0.02,
        "confirm_interval": 60.0,
        "timeout": 30.0,
    }
    options.update(kwargs)
    return ComfyUIClient(f"http://127.0.0.1:{port}", **options)


@pytest.fixture
def client(mock: MockComfy, ws: ScriptedSocket) -> Iterator[ComfyUIClient]:
    with ws_client(mock, ws.port) as c:
        c.connect()
        assert c.uses_websocket
        yield c


def frames_of(messages: list[dict[str, Any]], old: str, new: str) -> list[Frame]:
    """Recorded ws_messages as sendable frames, for prompt ``new`` (greetings dropped)."""
    frames: list[Frame] = []
    for message in messages:
        if message["kind"] == "text":
            frame = rename(message["json"], old, new)
            if frame["type"] == "status" and "sid" in frame["data"]:
                continue
            frames.append(frame)
        elif message["kind"] == "binary":
            png = png_bytes(size=(4, 4))
            if message["event_type"] == 4:
                meta = json.dumps(rename(message["metadata"], old, new)).encode()
                frames.append(struct.pack(">II", 4, len(meta)) + meta + png)
            else:
                frames.append(struct.pack(">II", message["event_type"], 2) + png)
    return frames


def recorded_run(version: str, name: str, pid: str) -> list[Frame]:
    data = transcript(version, name)
    old: str = data.get("prompt_id") or data["prompt_id_returned"]
    messages: list[dict[str, Any]] = data.get("ws_messages") or data["ws_messages_abridged"]
    return frames_of(messages, old, pid)


def index_of(frames: list[Frame], kind: str, node: str | None = "") -> int:
    for i, frame in enumerate(frames):
        if (
            isinstance(frame, dict)
            and frame["type"] == kind
            and (node == "" or frame["data"].get("node") == node)
        ):
            return i
    raise LookupError(kind)


# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_completion_on_executing_null_with_our_prompt_id(
    version: str, mock: MockComfy, client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    pid = client.submit(run_graph(version), output_node="5")
    frames = recorded_run(version, "04_run_success", pid)
    ws.send(frames)
    completion = client.wait(pid)
    assert completion.source == "websocket"
    assert completion.outputs["5"] == (ImageRef("run_00001_.png", "zq_protocol", "output"),)
    assert completion.outputs["6"][0].type == "temp"
    start = frames[index_of(frames, "execution_start")]
    success = frames[index_of(frames, "execution_success")]
    assert isinstance(start, dict)
    assert isinstance(success, dict)
    expected = (success["data"]["timestamp"] - start["data"]["timestamp"]) / 1000
    assert completion.server_seconds == pytest.approx(expected)
    assert not completion.fully_cached
    assert not mock.calls("GET", "/history/" + pid)  # the socket said everything
    assert ws.client_ids == [client.client_id]


def test_execution_success_alone_does_not_complete(
    mock: MockComfy, client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    pid = client.submit(run_graph(), output_node="5")
    frames = recorded_run("v0.18.1", "04_run_success", pid)
    ws.send(frames[: index_of(frames, "execution_success") + 1])
    with pytest.raises(GenerationTimeoutError):  # history is still '{}' here: no completion
        client.wait(pid, timeout=0.3)


@pytest.mark.parametrize("version", VERSIONS)
def test_cached_resubmission_is_reported_as_cached(
    version: str, mock: MockComfy, client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    pid = client.submit(run_graph(version), output_node="5")
    ws.send(recorded_run(version, "05_run_cached_resubmit", pid))
    mock.history[pid] = {}  # /view must not depend on it
    generation = client.result(pid)
    assert generation.cached == "server"
    assert generation.image_ref == ImageRef("run_00001_.png", "zq_protocol", "output")
    completion = client.wait(pid)  # the outcome is kept: same answer again
    assert completion.fully_cached
    assert set(completion.cached_nodes) == {"1", "2", "3", "4", "5", "6"}


@pytest.mark.parametrize("version", VERSIONS)
def test_execution_error_frames(version: str, client: ComfyUIClient, ws: ScriptedSocket) -> None:
    pid = client.submit(run_graph(), output_node="5")
    ws.send(recorded_run(version, "08_run_runtime_error", pid))
    with pytest.raises(GenerationFailedError) as info:
        client.wait(pid)
    assert info.value.node_id == "29"
    assert info.value.node_type == "VAELoader"
    assert "RuntimeError: ERROR: VAE is invalid: None" in str(info.value)


@pytest.mark.parametrize("version", VERSIONS)
def test_interrupted_frames(version: str, client: ComfyUIClient, ws: ScriptedSocket) -> None:
    pid = client.submit(run_graph(), output_node="5")
    ws.send(recorded_run(version, "09_interrupt", pid))
    with pytest.raises(GenerationInterruptedError, match=r"in node 4 \(VAEDecodeTiled\)"):
        client.wait(pid)


@pytest.mark.parametrize("version", VERSIONS)
def test_binary_and_unknown_frames_are_ignored(
    version: str, client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    pid = client.submit(run_graph(), output_node="5")
    runs = transcript(version, "06_ws_binary_preview_frames")["runs"]
    preview_frames = [
        frame
        for run in runs
        for frame in frames_of(
            run["ws_messages"], run["post"]["response"]["json"]["prompt_id"], pid
        )
        if isinstance(frame, bytes)
    ]
    assert {binary_event(f) for f in preview_frames} == {
        "PREVIEW_IMAGE",
        "PREVIEW_IMAGE_WITH_METADATA",
    }
    junk: list[Frame] = [
        b"\x00\x00\x00\x63" + b"unknown event",
        b"\x01",
        struct.pack(">I", 3) + struct.pack(">I", 1) + b"4" + "läuft".encode(),
        {"type": "feature_flags", "data": {"supports_preview_metadata": True}},
        {"type": "some_future_event", "data": {"prompt_id": pid, "x": 1}},
        {"type": "executing", "data": {"node": "4"}},  # reconnect greeting: no prompt_id
        {"type": "executing", "data": None},
    ]
    frames = recorded_run(version, "04_run_success", pid)
    middle = index_of(frames, "executing", "4")
    ws.send(frames[:middle] + preview_frames + junk + frames[middle:])
    ws.connections[-1].send("this is not json")
    assert client.wait(pid).outputs["5"]
    assert binary_event(b"\x00\x00\x00\x63") == "unknown(99)"
    assert binary_event(b"\x01") == "short frame"


def test_other_prompts_frames_do_not_complete_ours(
    client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    pid = client.submit(run_graph(), output_node="5")
    foreign = recorded_run("v0.18.1", "08_run_runtime_error", "someone-elses-prompt")
    ws.send(foreign)
    with pytest.raises(GenerationTimeoutError):
        client.wait(pid, timeout=0.2)
    pid2 = client.submit(run_graph(), output_node="5")
    ws.send([*foreign, *recorded_run("v0.18.1", "04_run_success", pid2)])
    assert client.wait(pid2).outputs["5"]


def test_parallel_waits_complete_in_any_order(client: ComfyUIClient, ws: ScriptedSocket) -> None:
    pids = [client.submit(run_graph(), output_node="5") for _ in range(4)]
    results: dict[str, Any] = {}

    def wait(pid: str) -> None:
        results[pid] = client.wait(pid)

    threads = [threading.Thread(target=wait, args=(pid,)) for pid in pids]
    for thread in threads:
        thread.start()
    for n, pid in enumerate(reversed(pids)):
        frames = recorded_run("v0.18.1", "04_run_success", pid)
        ws.send(rename(frames, "run_00001_.png", f"run_{n:05d}_.png"))
    for thread in threads:
        thread.join(10)
    assert sorted(results) == sorted(pids)
    names = {results[pid].outputs["5"][0].filename for pid in pids}
    assert len(names) == 4


def test_stalled_run_times_out_and_is_removed(
    mock: MockComfy, client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    pid = client.submit(run_graph(), output_node="5")
    mock.running.append(mock.pending.pop())
    frames = recorded_run("v0.18.1", "04_run_success", pid)
    ws.send(frames[: index_of(frames, "executing", "4") + 1])
    with pytest.raises(GenerationTimeoutError) as info:
        client.wait(pid, timeout=0.3)
    assert "running node 4 (VAEDecodeTiled)" in str(info.value)
    assert {"delete": [pid]} in mock.bodies("POST", "/queue")
    assert mock.bodies("POST", "/interrupt") == [{"prompt_id": pid}]


# ---------------------------------------------------------------------------------------
# progress


def test_progress_never_blocks_the_reader_and_keeps_the_newest(
    client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    gate = threading.Event()
    seen: list[Progress] = []

    def slow(progress: Progress) -> None:
        gate.wait(10)
        seen.append(progress)

    def broken(progress: Progress) -> None:
        raise RuntimeError("a listener bug")

    client.add_progress_listener(broken)
    client.add_progress_listener(slow)
    pid = client.submit(run_graph(), output_node="5")
    frames = recorded_run("v0.18.1", "04_run_success", pid)
    at = index_of(frames, "executing", "4") + 1
    flood: list[Frame] = [
        {"type": "progress", "data": {"value": k, "max": 3000, "prompt_id": pid, "node": "4"}}
        for k in range(1, 3001)
    ]
    rest = [f for f in frames[at:] if not (isinstance(f, dict) and f["type"] == "progress")]
    ws.send(frames[:at] + flood + rest)
    assert client.wait(pid).outputs["5"]  # completed while the listener is still blocked
    assert not seen
    gate.set()
    assert client.flush_progress()
    assert seen[-1] == Progress(pid, "4", 3000, 3000, "VAEDecodeTiled")
    assert len(seen) < 100  # intermediate steps were coalesced, not queued
    client.remove_progress_listener(slow)


def test_relay_delivers_newest_value_per_key() -> None:
    relay: LatestValueRelay[str, int] = LatestValueRelay()
    got: list[tuple[str, int]] = []
    relay.post("a", 0)  # no listener yet: dropped
    relay.add(lambda value: got.append(("x", value)))
    for value in range(5):
        relay.post("a", value)
    assert relay.flush()
    relay.close()
    assert got[-1] == ("x", 4)
    with pytest.raises(RuntimeError):
        relay.add(print)


# ---------------------------------------------------------------------------------------
# losing the socket


def test_reconnect_with_same_client_id_recovers_a_run_finished_meanwhile(
    mock: MockComfy, client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    pid = client.submit(run_graph(), output_node="5")
    frames = recorded_run("v0.18.1", "04_run_success", pid)
    ws.send(frames[: index_of(frames, "executing", "4") + 1])
    mock.finish(pid)  # it finishes while no socket listens
    ws.drop()
    ws.wait_for_connections(2)
    completion = client.wait(pid)
    assert completion.source == "history"
    assert completion.outputs["5"][0].filename == "run_00001_.png"
    assert ws.client_ids == [client.client_id, client.client_id]


def test_reconnect_mid_run_keeps_following_the_run(
    mock: MockComfy, client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    pid = client.submit(run_graph(), output_node="5")
    frames = recorded_run("v0.18.1", "04_run_success", pid)
    cut = index_of(frames, "executing", "4") + 1
    ws.send(frames[:cut])
    ws.drop()
    ws.wait_for_connections(2)
    result: list[Any] = []
    waiter = threading.Thread(target=lambda: result.append(client.wait(pid)))
    waiter.start()
    # the new socket: greeting 'executing' without prompt_id, then the rest of the run;
    # the server writes history before it sends executing(null)
    rest = frames[cut:]
    end = index_of(rest, "executing", None)
    ws.send([{"type": "executing", "data": {"node": "4"}}, *rest[:end]])
    mock.finish(pid)
    ws.send(rest[end:])
    waiter.join(10)
    assert result
    assert result[0].outputs["5"][0].filename == "run_00001_.png"
    assert client.uses_websocket


def test_socket_that_cannot_be_reopened_falls_back_to_polling(
    mock: MockComfy, client: ComfyUIClient, ws: ScriptedSocket
) -> None:
    pid = client.submit(run_graph(), output_node="5")
    ws.refuse = True
    ws.drop()
    mock.auto_finish_after = 2
    completion = client.wait(pid)
    assert completion.source == "history"
    assert mock.polls[pid] >= 3
    assert not client.uses_websocket


def test_no_websocket_at_all_means_polling(mock: MockComfy) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mock.auto_finish_after = 1
    with ws_client(mock, port) as client:
        client.connect()
        assert not client.uses_websocket
        assert client.websocket_unavailable is not None
        assert "cannot connect" in client.websocket_unavailable
        assert "polling" in repr(client)
        assert client.generate(run_graph(), output_node="5").image_ref is not None


def test_refused_upgrade_means_polling(mock: MockComfy, ws: ScriptedSocket) -> None:
    ws.refuse = True
    mock.auto_finish_after = 1
    with ws_client(mock, ws.port) as client:
        client.connect()
        assert (
            client.websocket_unavailable == "the server refused the WebSocket upgrade with HTTP 403"
        )
        assert client.generate(run_graph(), output_node="5").server_seconds is not None


def test_headers_go_with_the_websocket_handshake(mock: MockComfy, ws: ScriptedSocket) -> None:
    with ws_client(mock, ws.port, headers=[("Authorization", SECRET), ("X-Team", "qa")]) as client:
        client.connect()
        assert client.uses_websocket
        assert SECRET not in repr(client)
    assert ws.headers[0]["authorization"] == SECRET
    assert ws.headers[0]["x-team"] == "qa"
    assert all(r.headers["authorization"] == SECRET for r in mock.requests)


# ---------------------------------------------------------------------------------------
# https and wss


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[ScriptedSocket, Path]]:
    (tmp_path / "cert.pem").write_text(TEST_CERT)
    (tmp_path / "key.pem").write_text(TEST_KEY)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server = ScriptedSocket(ssl_context=context)
    server.http["/system_stats"] = recorded(
        "v0.18.1", "01_system_and_idle_state", "GET", "/system_stats"
    )["json"]
    yield server, tmp_path / "cert.pem"
    server.close()


def test_https_and_wss_with_the_hosts_ca(tls_server: tuple[ScriptedSocket, Path]) -> None:
    server, cafile = tls_server
    url = f"https://127.0.0.1:{server.port}"
    with ComfyUIClient(url, verify_tls=str(cafile), headers=[("Authorization", SECRET)]) as client:
        assert client.connect().comfyui_version == "0.18.1"
        assert client.uses_websocket  # wss:// with the same TLS settings
    deadline = time.monotonic() + 10  # the server thread records the handshake on its own time
    while not server.client_ids and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.client_ids == [client.client_id]
    assert server.headers[-1]["authorization"] == SECRET


def test_https_with_an_untrusted_certificate(tls_server: tuple[ScriptedSocket, Path]) -> None:
    server, _ = tls_server
    url = f"https://127.0.0.1:{server.port}"
    with ComfyUIClient(url, backoff=0.0) as client, pytest.raises(ComfyUIUnreachableError) as info:
        client.connect()
    assert f"the TLS handshake with {url} failed" in str(info.value)
    assert "verify_tls" in info.value.hint
    with ComfyUIClient(url, verify_tls=False) as insecure:
        assert insecure.connect().comfyui_version == "0.18.1"
        assert insecure.uses_websocket


def test_unreadable_ca_bundle_is_named(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ComfyUIUnreachableError, match="cannot use the TLS certificates"):
        ComfyUIClient("https://127.0.0.1:1", verify_tls=missing)
