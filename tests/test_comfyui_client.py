"""ComfyUIClient over an httpx.MockTransport: error mapping, retries, no double submit, polling.

The mock answers with the bodies recorded from real servers (tests/transcripts/), with the
recorded prompt ids replaced by the ones the client chose. Every request is logged, so each
test can say exactly what went over the wire. The WebSocket side is in test_comfyui_ws.py.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from pytest_zimage_quality.comfyui import ComfyUIClient, DeviceInfo, ImageRef
from pytest_zimage_quality.errors import (
    ComfyUIError,
    ComfyUIHTTPError,
    ComfyUIProtocolError,
    ComfyUIUnreachableError,
    GenerationFailedError,
    GenerationInterruptedError,
    GenerationTimeoutError,
    ImageDecodeError,
    ModelFilesMissingError,
    WorkflowRejectedError,
)
from pytest_zimage_quality.hosts import parse_host
from tests.helpers.comfy_mock import (
    HOST,
    SECRET,
    TRANSCRIPTS,
    VERSIONS,
    Handler,
    MockComfy,
    empty,
    from_recording,
    history_entry,
    json_response,
    png_bytes,
    recorded,
    run_graph,
    transcript,
)

# ---------------------------------------------------------------------------------------
# helpers (the scripted ComfyUI and the transcripts are in tests.helpers.comfy_mock)


def make_client(mock: MockComfy, **kwargs: Any) -> ComfyUIClient:
    options: dict[str, Any] = {
        "transport": mock.transport,
        "use_websocket": False,
        "backoff": 0.0,
        "poll_interval": 0.01,
        "confirm_interval": 60.0,
        "timeout": 30.0,
    }
    base_url = kwargs.pop("base_url", HOST)
    options.update(kwargs)
    return ComfyUIClient(base_url, **options)


@pytest.fixture
def mock() -> MockComfy:
    return MockComfy()


@pytest.fixture
def client(mock: MockComfy) -> Iterator[ComfyUIClient]:
    with make_client(mock) as c:
        yield c


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


# ---------------------------------------------------------------------------------------
# server information


@pytest.mark.parametrize("version", VERSIONS)
def test_connect_reads_system_stats(version: str) -> None:
    mock = MockComfy(version)
    with make_client(mock) as client:
        info = client.connect()
    assert info.comfyui_version == version[1:]
    assert info.url == HOST
    assert info.gpu_name == "cpu"
    assert info.devices[0].index is None
    assert info.devices[0].vram_total > 0
    assert info.pytorch_version.startswith("2.14.1")
    assert info.os in ("linux", "posix")
    assert info.embeds_metadata
    assert client.websocket_unavailable == "disabled"


def test_gpu_name_drops_comfyui_decoration() -> None:
    device = DeviceInfo("cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync", "cuda", 0, 80, 70)
    assert device.readable_name == "NVIDIA H100 80GB HBM3"
    assert DeviceInfo("cpu", "cpu", None, 1, 1).readable_name == "cpu"


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            200, text="<!doctype html><title>Login</title>", headers={"content-type": "text/html"}
        ),
        httpx.Response(200, json={"status": "ok"}),
        httpx.Response(200, json=[1, 2, 3]),
    ],
    ids=["html", "json-without-system", "json-list"],
)
def test_a_host_that_is_not_comfyui_is_a_protocol_error(
    mock: MockComfy, client: ComfyUIClient, response: httpx.Response
) -> None:
    mock.routes[("GET", "/system_stats")] = lambda request: response
    with pytest.raises(ComfyUIProtocolError) as info:
        client.connect()
    assert HOST in str(info.value)
    assert info.value.host == HOST


def test_object_info_and_model_identity(mock: MockComfy, client: ComfyUIClient) -> None:
    unet = recorded("v0.18.1", "02_object_info", "GET", "/object_info/UNETLoader")
    mock.routes[("GET", "/object_info/UNETLoader")] = lambda r: from_recording(unet)
    mock.routes[("GET", "/object_info/NoSuchNode")] = lambda r: json_response(200, {})
    assert "UNETLoader" in client.object_info("UNETLoader")
    assert client.object_info("NoSuchNode") == {}
    mock.routes[("GET", "/view_metadata/vae")] = lambda r: json_response(
        200, {"modelspec.title": "ae", "filename": r.url.params["filename"]}
    )
    assert client.model_identity("vae", "ae.safetensors") == {
        "modelspec.title": "ae",
        "filename": "ae.safetensors",
    }
    mock.routes[("GET", "/view_metadata/vae")] = lambda r: empty(404)
    assert client.model_identity("vae", "ae.safetensors") is None


def test_queue_sorts_pending_by_number(mock: MockComfy, client: ComfyUIClient) -> None:
    steps = transcript("v0.18.1", "10_queue_operations")["steps"]
    reply = next(s["response"] for s in steps if s["request"]["path"] == "/queue")
    mock.routes[("GET", "/queue")] = lambda r: from_recording(reply)
    running, pending = client.queue()
    assert running == ["c81141d6-2cbc-4e5e-9b4f-2df7ccdb5ace"]
    numbers = {item[1]: item[0] for item in reply["json"]["queue_pending"]}
    assert [numbers[p] for p in pending] == sorted(numbers.values())
    assert numbers[pending[0]] < 0  # "front" jobs get negative numbers


# ---------------------------------------------------------------------------------------
# transport errors and retries


def test_connection_refused_is_unreachable_after_bounded_retries(mock: MockComfy) -> None:
    mock.routes[("GET", "/system_stats")] = raising(
        httpx.ConnectError("[Errno 111] Connection refused")
    )
    with make_client(mock, retries=2) as client, pytest.raises(ComfyUIUnreachableError) as info:
        client.connect()
    assert len(mock.calls("GET", "/system_stats")) == 3
    message = str(info.value)
    assert "cannot connect to ComfyUI at http://comfy.test:8188" in message
    assert "Connection refused" in message
    assert "hint:" in message


def test_dns_failure_names_the_host(mock: MockComfy, client: ComfyUIClient) -> None:
    mock.routes[("GET", "/system_stats")] = raising(
        httpx.ConnectError("[Errno -2] Name or service not known")
    )
    with pytest.raises(
        ComfyUIUnreachableError, match=r"cannot resolve the host name of http://comfy\.test:8188"
    ):
        client.connect()


def test_tls_failure_is_not_retried(mock: MockComfy) -> None:
    mock.routes[("GET", "/system_stats")] = raising(
        httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    )
    with (
        make_client(mock, base_url="https://comfy.test:8443") as client,
        pytest.raises(
            ComfyUIUnreachableError, match=r"TLS handshake with https://comfy\.test:8443"
        ),
    ):
        client.connect()
    assert len(mock.calls("GET", "/system_stats")) == 1


def test_a_silent_server_is_not_retried(mock: MockComfy, client: ComfyUIClient) -> None:
    # retrying a server that accepts connections and says nothing only multiplies the wait
    mock.routes[("GET", "/system_stats")] = raising(httpx.ReadTimeout("timed out"))
    with pytest.raises(ComfyUIUnreachableError, match=r"did not answer within 7.5 s") as info:
        client.connect()  # http bound: a quarter of the 30 s timeout
    assert "sent nothing" in str(info.value)
    assert len(mock.calls("GET", "/system_stats")) == 1


def test_gateway_errors_are_retried(mock: MockComfy, client: ComfyUIClient) -> None:
    answers = iter([httpx.Response(503, text="busy"), httpx.Response(502, text="bad gateway")])
    real = recorded("v0.18.1", "01_system_and_idle_state", "GET", "/system_stats")
    mock.routes[("GET", "/system_stats")] = lambda r: next(answers, None) or from_recording(real)
    assert client.connect().comfyui_version == "0.18.1"
    assert len(mock.calls("GET", "/system_stats")) == 3


def test_persistent_5xx_is_an_http_error_with_the_body(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    mock.routes[("GET", "/system_stats")] = lambda r: httpx.Response(504, text="upstream timed out")
    with pytest.raises(ComfyUIHTTPError) as info:
        client.connect()
    assert info.value.status == 504
    assert "upstream timed out" in str(info.value)
    assert HOST in str(info.value)


def test_500_is_not_retried(mock: MockComfy, client: ComfyUIClient) -> None:
    body = recorded("v0.18.1", "11_free", "POST", "/free")  # {"unload_models": true} -> 200
    assert body["status"] == 200
    mock.routes[("POST", "/free")] = lambda r: httpx.Response(
        500, text="500 Internal Server Error\n\nServer got itself in trouble"
    )
    with pytest.raises(ComfyUIHTTPError, match="Server got itself in trouble") as info:
        client.free(free_memory=True)
    assert info.value.status == 500
    assert len(mock.calls("POST", "/free")) == 1


@pytest.mark.parametrize(("status", "hint"), [(401, "--zimage-header"), (403, "--zimage-header")])
def test_auth_failures_hint_at_headers(
    mock: MockComfy, client: ComfyUIClient, status: int, hint: str
) -> None:
    mock.routes[("GET", "/system_stats")] = lambda r: empty(status)
    with pytest.raises(ComfyUIHTTPError) as info:
        client.connect()
    assert info.value.status == status
    assert hint in info.value.hint


def test_headers_travel_but_never_show(mock: MockComfy) -> None:
    with make_client(
        mock, headers=[("Authorization", SECRET)], base_url="http://user:pw@comfy.test:8188/comfy/"
    ) as client:
        mock.routes[("GET", "/comfy/system_stats")] = raising(httpx.ConnectError("refused"))
        with pytest.raises(ComfyUIUnreachableError) as info:
            client.connect()
        text = repr(client) + str(info.value) + repr(info.value)
        assert client.host == "http://comfy.test:8188/comfy"
    assert all(r.headers["authorization"] == SECRET for r in mock.requests)
    assert all(r.url.path == "/comfy/system_stats" for r in mock.requests)
    assert "Authorization" in text
    assert SECRET not in text
    assert "pw" not in text


def test_credentials_in_the_url_become_basic_auth_and_stay_hidden(mock: MockComfy) -> None:
    with make_client(mock, base_url="http://user:p%40ss@comfy.test:8188") as client:
        client.connect()
        assert client.host == HOST
        assert "p%40ss" not in repr(client)
    (request,) = mock.requests
    assert request.headers["authorization"] == httpx.BasicAuth("user", "p@ss")._auth_header


@pytest.mark.parametrize("url", ["ftp://comfy.test", "http://comfy.test:notaport", "http://"])
def test_bad_base_url_is_refused(url: str) -> None:
    with pytest.raises(ComfyUIUnreachableError, match="not a ComfyUI address"):
        ComfyUIClient(url, use_websocket=False)


def test_host_port_without_scheme_means_http(mock: MockComfy) -> None:
    with make_client(mock, base_url="comfy.test:8188") as client:
        assert client.host == HOST
        assert client.base_url == HOST


def test_the_client_reads_the_options_grammar(mock: MockComfy) -> None:
    with make_client(mock, base_url="comfy.test") as client:  # the default port, as the option
        assert client.host == HOST
    address = parse_host("http://user:p%40ss@comfy.test:8188")
    with make_client(mock, base_url=address) as client:
        client.connect()
        assert client.host == HOST
    (request,) = mock.requests
    assert request.headers["authorization"] == httpx.BasicAuth("user", "p@ss")._auth_header


def test_a_refused_address_never_shows_its_password() -> None:
    with pytest.raises(ComfyUIUnreachableError, match="not a ComfyUI address") as info:
        ComfyUIClient("ftp://user:hunter2@comfy.test", use_websocket=False)
    assert "hunter2" not in str(info.value) + info.value.host
    assert "user:***@" in str(info.value)
    with pytest.raises(ComfyUIUnreachableError, match="starts its fake server itself"):
        ComfyUIClient("simulated", use_websocket=False)


# ---------------------------------------------------------------------------------------
# validation errors: the recorded 400 bodies, both versions


def rejected(version: str, case: str) -> dict[str, Any]:
    for entry in transcript(version, "07_prompt_validation_errors")["cases"]:
        if entry["case"] == case:
            found: dict[str, Any] = entry
            return found
    raise LookupError(case)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_required_input", ["node 2 (VAEDecode) input vae: Required input is missing"]),
        ("unknown_class_type", ["node 1 (class 'NoSuchNode')", "NoSuchNode"]),
        ("missing_class_type_key", ["node 1 (class None)"]),
        (
            "z_image_turbo_workflow_models_absent",
            [
                "node 28 (UNETLoader) input unet_name: Value not in list: unet_name: "
                "'z_image_turbo_bf16.safetensors' not in []",
                "node 30 (CLIPLoader) input clip_name",
                "node 29 (VAELoader) input vae_name",
                "models/diffusion_models",
            ],
        ),
        ("no_output_nodes", ["Prompt has no outputs", "SaveImage"]),
        (
            "value_smaller_than_min",
            ["node 1 (EmptyImage) input width: Value 0 smaller than min of 1"],
        ),
        ("invalid_input_type", ["node 1 (EmptyImage) input width: Failed to convert"]),
        ("return_type_mismatch", ["node 2 (VAEDecode) input samples: Return type mismatch"]),
        ("link_to_missing_node", ["node 2 (SaveImage): Exception when validating node: '99'"]),
        ("bad_link_shape", ["node 2 (SaveImage) input images: Bad linked input"]),
        ("no_prompt_key", ["No prompt provided"]),
    ],
)
def test_400_validation_errors_are_rejections_in_the_servers_words(
    version: str, case: str, expected: list[str]
) -> None:
    entry = rejected(version, case)
    mock = MockComfy(version)
    mock.routes[("POST", "/prompt")] = lambda r: from_recording(entry["response"])
    graph = (entry["request"]["json"] or {}).get("prompt") or {"1": {"class_type": "X"}}
    with make_client(mock) as client, pytest.raises(WorkflowRejectedError) as info:
        client.submit(graph, output_node="5")
    error = info.value
    text = str(error)
    assert f"ComfyUI at {HOST} rejected the workflow" in text
    assert error.error_type == entry["response"]["json"]["error"]["type"]
    assert error.error_type in text
    for fragment in expected:
        assert fragment in text
    assert error.hint
    assert len(mock.calls("POST", "/prompt")) == 1  # a rejection is never re-sent


@pytest.mark.parametrize("version", VERSIONS)
def test_unknown_class_error_types_of_both_versions(version: str) -> None:
    entry = rejected(version, "unknown_class_type")
    expected = {"v0.18.1": "missing_node_type", "v0.3.64": "invalid_prompt"}[version]
    assert entry["response"]["json"]["error"]["type"] == expected
    mock = MockComfy(version)
    mock.routes[("POST", "/prompt")] = lambda r: from_recording(entry["response"])
    with make_client(mock) as client, pytest.raises(WorkflowRejectedError) as info:
        client.submit(entry["request"]["json"]["prompt"])
    assert "install the custom node" in info.value.hint


def test_403_on_submit_is_an_http_error(mock: MockComfy, client: ComfyUIClient) -> None:
    entry = rejected("v0.18.1", "origin_header_mismatch_403")
    mock.routes[("POST", "/prompt")] = lambda r: from_recording(entry["response"])
    with pytest.raises(ComfyUIHTTPError) as info:
        client.submit(run_graph())
    assert info.value.status == 403


@pytest.mark.parametrize("version", VERSIONS)
def test_200_with_node_errors_dropping_our_output_raises_and_unqueues(version: str) -> None:
    entry = rejected(version, "one_good_output_one_bad_output__accepted_200")
    mock = MockComfy(version)

    def post(request: httpx.Request) -> httpx.Response:
        pid = json.loads(request.content)["prompt_id"]
        mock.pending.append(pid)
        return json_response(200, {**entry["response"]["json"], "prompt_id": pid})

    mock.routes[("POST", "/prompt")] = post
    graph = entry["request"]["json"]["prompt"]
    with make_client(mock) as client:
        with pytest.raises(WorkflowRejectedError) as info:
            client.submit(graph, output_node="4")
        assert "node 3 (EmptyImage) input width: Value -5 smaller than min of 1" in str(info.value)
        (pid,) = [b["prompt_id"] for b in mock.bodies("POST", "/prompt")]
        assert mock.bodies("POST", "/queue") == [{"delete": [pid]}]  # half-accepted: removed
        # the other output node was accepted: asking for it is fine
        assert client.submit(graph, output_node="2")


# ---------------------------------------------------------------------------------------
# submitting exactly once


def test_submit_sends_own_client_id_and_prompt_id(mock: MockComfy, client: ComfyUIClient) -> None:
    pid = client.submit(run_graph(), extra_pnginfo={"workflow": {"note": "x"}})
    (body,) = mock.bodies("POST", "/prompt")
    assert body["prompt_id"] == pid
    assert re.fullmatch(r"[0-9a-f-]{36}", pid)
    assert body["client_id"] == client.client_id
    assert body["extra_data"] == {"extra_pnginfo": {"workflow": {"note": "x"}}}
    assert body["prompt"] == run_graph()
    assert client.submit(run_graph(), prompt_id="mine-1") == "mine-1"


def test_read_timeout_on_submit_checks_the_queue_and_does_not_resend(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    def post(request: httpx.Request) -> httpx.Response:
        mock.default(request)  # the server queued it ...
        raise httpx.ReadTimeout("timed out")  # ... but the reply was lost

    mock.routes[("POST", "/prompt")] = post
    pid = client.submit(run_graph(), output_node="5")
    assert len(mock.calls("POST", "/prompt")) == 1
    assert mock.calls("GET", "/queue")
    assert mock.pending == [pid]


def test_lost_reply_found_in_history_is_not_resent(mock: MockComfy, client: ComfyUIClient) -> None:
    def post(request: httpx.Request) -> httpx.Response:
        pid = json.loads(request.content)["prompt_id"]
        mock.graphs[pid] = {}
        mock.finish(pid)  # it already ran
        return httpx.Response(502, text="bad gateway")

    mock.routes[("POST", "/prompt")] = post
    pid = client.submit(run_graph(), output_node="5")
    assert len(mock.calls("POST", "/prompt")) == 1
    assert client.wait(pid).source == "history"


def test_a_request_that_never_arrived_is_resent(mock: MockComfy) -> None:
    failures = iter([httpx.ReadError("connection reset"), httpx.ConnectError("refused")])

    def post(request: httpx.Request) -> httpx.Response:
        failure = next(failures, None)
        if failure is not None:
            raise failure
        return mock.default(request)

    mock.routes[("POST", "/prompt")] = post
    with make_client(mock, http_timeout=0.2) as client:
        pid = client.submit(run_graph())
    bodies = mock.bodies("POST", "/prompt")
    assert len(bodies) == 3
    assert {b["prompt_id"] for b in bodies} == {pid}  # the same id every time
    assert mock.pending == [pid]  # queued once
    # after the reset the client looked for it for http_timeout; after "refused" it did not
    assert len(mock.calls("GET", "/queue")) >= 2


def test_a_503_on_submit_is_checked_once_then_resent(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    answers = iter([httpx.Response(503, text="busy")])
    mock.routes[("POST", "/prompt")] = lambda r: next(answers, None) or mock.default(r)
    pid = client.submit(run_graph())
    assert len(mock.calls("POST", "/prompt")) == 2
    assert len(mock.calls("GET", "/queue")) == 1
    assert mock.pending == [pid]


def test_a_slow_server_is_given_time_before_any_resend(mock: MockComfy) -> None:
    polls = {"n": 0}

    def post(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out")  # the server is still validating it ...

    def queue(request: httpx.Request) -> httpx.Response:
        polls["n"] += 1
        if polls["n"] == 3:  # ... and queues it a little later
            pid = json.loads(mock.calls("POST", "/prompt")[0].content)["prompt_id"]
            mock.pending.append(pid)
        return mock.default(request)

    mock.routes[("POST", "/prompt")] = post
    mock.routes[("GET", "/queue")] = queue
    with make_client(mock, http_timeout=5.0) as client:
        pid = client.submit(run_graph())
    assert len(mock.calls("POST", "/prompt")) == 1
    assert mock.pending == [pid]


def test_unknown_submit_state_is_never_resent(mock: MockComfy) -> None:
    client = make_client(mock, outage=0.1)
    client.connect()
    mock.routes[("POST", "/prompt")] = raising(httpx.ReadTimeout("timed out"))
    mock.routes[("GET", "/queue")] = raising(httpx.ConnectError("refused"))
    with pytest.raises(ComfyUIUnreachableError, match="not sending it again"):
        client.submit(run_graph())
    assert len(mock.calls("POST", "/prompt")) == 1


def test_same_prompt_id_cannot_be_in_flight_twice(client: ComfyUIClient) -> None:
    client.submit(run_graph(), prompt_id="dup")
    with pytest.raises(ValueError, match="already in flight"):
        client.submit(run_graph(), prompt_id="dup")


# ---------------------------------------------------------------------------------------
# completion by polling /history (no WebSocket)


@pytest.mark.parametrize("version", VERSIONS)
def test_polling_completion_reads_the_history_entry(version: str) -> None:
    mock = MockComfy(version)
    mock.auto_finish_after = 3  # three '{}' answers first, like a prompt still running
    with make_client(mock) as client:
        pid = client.submit(run_graph(version), output_node="5")
        completion = client.wait(pid)
    assert completion.source == "history"
    assert mock.polls[pid] == 4
    assert completion.outputs["5"] == (ImageRef("run_00001_.png", "zq_protocol", "output"),)
    messages = dict(history_entry(version, "04_run_success", pid)["status"]["messages"])
    expected = (
        messages["execution_success"]["timestamp"] - messages["execution_start"]["timestamp"]
    ) / 1000
    assert completion.server_seconds == pytest.approx(expected)
    assert completion.cached_nodes == ()
    assert not completion.fully_cached


@pytest.mark.parametrize("version", VERSIONS)
def test_execution_error_in_history_is_a_generation_failure(version: str) -> None:
    mock = MockComfy(version)
    mock.entry_from = "08_run_runtime_error"
    with make_client(mock) as client:
        pid = client.submit(run_graph(), output_node="5")
        with pytest.raises(GenerationFailedError) as info:
            client.wait(pid)
    error = info.value
    assert (error.node_id, error.node_type, error.exception_type) == (
        "29",
        "VAELoader",
        "RuntimeError",
    )
    text = str(error)
    assert f"ComfyUI at {HOST} failed prompt {pid} in node 29 (VAELoader)" in text
    assert "RuntimeError: ERROR: VAE is invalid: None" in text
    assert "load_vae" in text  # the last traceback frames, in the server's words


@pytest.mark.parametrize("version", VERSIONS)
def test_interrupted_in_history_is_an_interruption(version: str) -> None:
    mock = MockComfy(version)
    mock.entry_from = "09_interrupt"
    with make_client(mock) as client:
        pid = client.submit(run_graph(), output_node="5")
        with pytest.raises(
            GenerationInterruptedError, match=r"interrupted on .* in node 4 \(VAEDecodeTiled\)"
        ):
            client.wait(pid)


def test_timeout_removes_our_prompt_from_the_server(mock: MockComfy, client: ComfyUIClient) -> None:
    mock.auto_finish_after = None  # never finishes

    def post(request: httpx.Request) -> httpx.Response:
        reply = mock.default(request)
        mock.running.append(mock.pending.pop())
        return reply

    mock.routes[("POST", "/prompt")] = post
    pid = client.submit(run_graph(), output_node="5")
    with pytest.raises(GenerationTimeoutError) as info:
        client.wait(pid, timeout=0.2)
    assert f"prompt {pid} did not finish within 0.2 s on {HOST}" in str(info.value)
    assert {"delete": [pid]} in mock.bodies("POST", "/queue")
    assert mock.bodies("POST", "/interrupt") == [{"prompt_id": pid}]
    with pytest.raises(GenerationTimeoutError):  # the outcome sticks
        client.wait(pid)


def test_a_prompt_deleted_by_someone_else_is_noticed(mock: MockComfy) -> None:
    mock.auto_finish_after = None
    with make_client(mock, confirm_interval=0.05) as client:
        pid = client.submit(run_graph(), output_node="5")
        mock.pending.clear()  # someone pressed "clear queue"
        with pytest.raises(
            GenerationInterruptedError, match="neither queued nor in the server's history"
        ):
            client.wait(pid)


def test_close_wakes_waiters(mock: MockComfy) -> None:
    mock.auto_finish_after = None
    client = make_client(mock, poll_interval=0.05)
    pid = client.submit(run_graph())
    errors: list[BaseException] = []
    started = threading.Event()

    def wait() -> None:
        started.set()
        try:
            client.wait(pid)
        except ComfyUIError as exc:
            errors.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    started.wait()
    client.close()
    thread.join(10)
    assert not thread.is_alive()
    assert errors
    assert "closed" in str(errors[0])


def test_many_waits_in_parallel(mock: MockComfy, client: ComfyUIClient) -> None:
    mock.auto_finish_after = None
    pids = [client.submit(run_graph(), prompt_id=f"p{i}") for i in range(8)]
    results: dict[str, Any] = {}

    def wait(pid: str) -> None:
        results[pid] = client.wait(pid)

    threads = [threading.Thread(target=wait, args=(pid,)) for pid in pids]
    for thread in threads:
        thread.start()
    for pid in reversed(pids):  # finish in reverse order
        mock.finish(pid)
    for thread in threads:
        thread.join(10)
    assert sorted(results) == sorted(pids)
    assert all(results[p].prompt_id == p for p in pids)


# ---------------------------------------------------------------------------------------
# cancelling: only our own prompts


def test_cancel_all_touches_only_our_prompts(mock: MockComfy, client: ComfyUIClient) -> None:
    mock.auto_finish_after = None
    ours = [client.submit(run_graph(), prompt_id=f"ours-{i}") for i in range(3)]
    mock.pending[:0] = ["foreign-pending"]
    mock.running.append(mock.pending.pop(1))  # ours-0 runs; foreign waits ahead of ours-1/2
    caught: list[BaseException] = []

    def wait() -> None:
        try:
            client.wait(ours[1])
        except GenerationInterruptedError as exc:
            caught.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    client.cancel_all()
    thread.join(10)
    deleted = [pid for body in mock.bodies("POST", "/queue") for pid in body["delete"]]
    assert set(deleted) == set(ours)
    assert mock.bodies("POST", "/interrupt") == [{"prompt_id": "ours-0"}]
    assert mock.pending == ["foreign-pending"]
    assert caught
    assert "this client cancelled it" in str(caught[0])
    with pytest.raises(ValueError, match="not submitted by this client"):
        client.interrupt("foreign-pending")
    with pytest.raises(ValueError, match="not submitted by this client"):
        client.delete_pending(["foreign-pending", "ours-1"])


def test_delete_pending_and_interrupt_target_our_ids(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    mock.auto_finish_after = None
    pid = client.submit(run_graph())
    client.delete_pending([pid])
    client.interrupt(pid)
    assert mock.bodies("POST", "/queue") == [{"delete": [pid]}]
    assert mock.bodies("POST", "/interrupt") == [{"prompt_id": pid}]
    with pytest.raises(GenerationInterruptedError, match="this client deleted it from the queue"):
        client.wait(pid)


# ---------------------------------------------------------------------------------------
# images


def test_generate_end_to_end_by_polling(mock: MockComfy, client: ComfyUIClient) -> None:
    generation = client.generate(run_graph(), output_node="5")
    assert generation.image_ref == ImageRef("run_00001_.png", "zq_protocol", "output")
    (view,) = mock.calls("GET", "/view")
    assert dict(view.url.params) == {
        "filename": "run_00001_.png",
        "subfolder": "zq_protocol",
        "type": "output",
    }
    assert generation.png.startswith(b"\x89PNG")
    assert generation.wall_seconds is not None
    assert generation.wall_seconds > 0
    assert generation.server_seconds is not None
    assert generation.cached == ""
    assert generation.host == HOST
    assert "image=" not in repr(generation)


def test_view_404_is_an_http_error_naming_the_triplet(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    mock.routes[("GET", "/view")] = lambda r: empty(404)
    ref = ImageRef("run_00001_.png", "zq_protocol", "output")
    with pytest.raises(ComfyUIHTTPError) as info:
        client.fetch_image(ref)
    assert info.value.status == 404
    assert "run_00001_.png (subfolder 'zq_protocol', type 'output')" in str(info.value)


def test_view_answering_html_is_a_protocol_error(mock: MockComfy, client: ComfyUIClient) -> None:
    mock.routes[("GET", "/view")] = lambda r: httpx.Response(
        200, text="<html>login</html>", headers={"content-type": "text/html"}
    )
    with pytest.raises(ComfyUIProtocolError, match="not an image"):
        client.fetch_image(ImageRef("a.png", "", "output"))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:40] + bytes(b ^ 0xFF for b in data[40:60]) + data[60:],
        lambda data: b"",
        lambda data: b"GIF89a" + data,
    ],
    ids=["truncated", "bit-flipped", "empty", "not-png"],
)
def test_corrupt_png_is_a_decode_error_naming_the_triplet(
    mock: MockComfy, client: ComfyUIClient, mangle: Callable[[bytes], bytes]
) -> None:
    mock.image = lambda name: mangle(png_bytes(run_graph(), size=(64, 64)))
    with pytest.raises(ImageDecodeError) as info:
        client.generate(run_graph(), output_node="5")
    text = str(info.value)
    assert "run_00001_.png (subfolder 'zq_protocol', type 'output')" in text
    assert HOST in text


def test_png_from_another_graph_is_refused(mock: MockComfy, client: ComfyUIClient) -> None:
    other = run_graph()
    other["1"]["inputs"]["color"] = 1
    mock.image = lambda name: png_bytes(other)
    with pytest.raises(ComfyUIProtocolError) as info:
        client.generate(run_graph(), output_node="5")
    assert "node 1 (EmptyImage) input color: submitted 3368652, image has 1" in str(info.value)


def test_png_prompt_comparison_tolerates_server_normalisation(client: ComfyUIClient) -> None:
    graph = run_graph()
    graph["9"] = {"class_type": "ModelSamplingAuraFlow", "inputs": {"shift": 3}}
    stored = json.loads(json.dumps(graph))
    stored["9"]["inputs"]["shift"] = 3.0  # FLOAT inputs come back as floats
    stored["1"]["_meta"] = {"title": "renamed in the UI"}
    client.verify_png(png_bytes(stored), expected_graph=graph)
    client.verify_png(png_bytes(None), expected_graph=graph)  # --disable-metadata
    info = PngInfo()
    info.add_text("prompt", "{not json")
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    with pytest.raises(ComfyUIProtocolError, match="not a JSON graph"):
        client.verify_png(buffer.getvalue(), expected_graph=graph)


def test_missing_output_node_image_is_a_protocol_error(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    with pytest.raises(ComfyUIProtocolError, match="without an image from output node 7"):
        client.generate(run_graph(), output_node="7")


# ---------------------------------------------------------------------------------------
# checking graphs before generating


def zimage_graph() -> dict[str, Any]:
    graph: dict[str, Any] = json.loads(
        (TRANSCRIPTS.parent.parent / "example_suite" / "z_image_turbo_t2i_api.json").read_text(
            "utf-8"
        )
    )
    return graph


def serve_object_info(mock: MockComfy, files: dict[str, list[str]] | None = None) -> None:
    """Answer /object_info/{class} from recording 02, with ``files`` as loader options."""
    files = files or {}
    steps = transcript("v0.18.1", "02_object_info")["steps"]
    specs = {
        s["request"]["path"].removeprefix("/object_info/"): s["response"]["json"]
        for s in steps
        if s["request"]["path"].startswith("/object_info/")
    }

    def handler(request: httpx.Request) -> httpx.Response:
        cls = request.url.path.removeprefix("/object_info/")
        reply = json.loads(json.dumps(specs.get(cls, {})))
        for name, options in files.items():
            loader, _, input_name = name.partition(".")
            if loader == cls:
                spec = reply[cls]["input"]["required"][input_name]
                spec[0] = options
        return json_response(200, reply)

    mock.routes[("GET", "/object_info/*")] = handler


def test_check_graphs_lists_every_missing_model_file(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    serve_object_info(mock, {"UNETLoader.unet_name": ["z_image_turbo_bf16.safetensors"]})
    bf16 = zimage_graph()
    nvfp4 = zimage_graph()
    nvfp4["28"]["inputs"]["unet_name"] = "z_image_turbo_nvfp4.safetensors"
    with pytest.raises(ModelFilesMissingError) as info:
        client.check_graphs({"bf16": bf16, "nvfp4": nvfp4})
    error = info.value
    text = str(error)
    missing = {(m["config"], m["node"], m["file"], m["folder"]) for m in error.missing}
    assert missing == {
        ("bf16", "30", "qwen_3_4b.safetensors", "text_encoders"),
        ("bf16", "29", "ae.safetensors", "vae"),
        ("nvfp4", "28", "z_image_turbo_nvfp4.safetensors", "diffusion_models"),
        ("nvfp4", "30", "qwen_3_4b.safetensors", "text_encoders"),
        ("nvfp4", "29", "ae.safetensors", "vae"),
    }
    assert (
        "config 'nvfp4': node 28 (UNETLoader) unet_name = 'z_image_turbo_nvfp4.safetensors': "
        "copy it into models/diffusion_models/ (server has: z_image_turbo_bf16.safetensors)"
    ) in text
    assert HOST in text
    # one /object_info request per class, whatever the number of graphs
    paths = [r.url.path for r in mock.calls("GET")]
    assert len(paths) == len(set(paths)) == len({n["class_type"] for n in bf16.values()})


def test_check_graphs_keeps_labels_that_say_what_they_are(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    serve_object_info(mock)
    with pytest.raises(ModelFilesMissingError) as info:
        client.check_graphs({"config BF16": zimage_graph()})
    assert "\n  config BF16: node 28 (UNETLoader) unet_name = " in str(info.value)


def test_check_graphs_passes_when_everything_is_there(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    serve_object_info(
        mock,
        {
            "UNETLoader.unet_name": ["z_image_turbo_bf16.safetensors"],
            "CLIPLoader.clip_name": ["qwen_3_4b.safetensors"],
            "VAELoader.vae_name": ["pixel_space", "ae.safetensors"],
        },
    )
    client.check_graphs({"bf16": zimage_graph()})


def test_check_graphs_rejects_unknown_classes_and_bad_choices(
    mock: MockComfy, client: ComfyUIClient
) -> None:
    serve_object_info(
        mock,
        {
            "UNETLoader.unet_name": ["z_image_turbo_bf16.safetensors"],
            "CLIPLoader.clip_name": ["qwen_3_4b.safetensors"],
            "VAELoader.vae_name": ["ae.safetensors"],
        },
    )
    graph = zimage_graph()
    graph["3"]["inputs"]["sampler_name"] = "res_multistepp"
    with pytest.raises(WorkflowRejectedError) as info:
        client.check_graphs({"fp8": graph})
    assert "config 'fp8': node 3 (KSampler) input sampler_name = 'res_multistepp'" in str(
        info.value
    )
    graph["50"] = {"class_type": "NoSuchNode", "inputs": {}}
    with pytest.raises(
        WorkflowRejectedError, match="config 'fp8': node 50 uses class 'NoSuchNode'"
    ):
        client.check_graphs({"fp8": graph})


def test_check_graphs_reads_the_new_combo_encoding(mock: MockComfy, client: ComfyUIClient) -> None:
    spec = {
        "input": {
            "required": {
                "mode": ["COMBO", {"options": ["a", "b"], "multiselect": False}],
                "lora_name": ["COMBO", {"options": []}],
            }
        }
    }
    mock.routes[("GET", "/object_info/NewNode")] = lambda r: json_response(200, {"NewNode": spec})
    client.check_graphs({"x": {"1": {"class_type": "NewNode", "inputs": {"mode": "a"}}}})
    with pytest.raises(WorkflowRejectedError, match="'c' is not one of the server's options"):
        client.check_graphs({"x": {"1": {"class_type": "NewNode", "inputs": {"mode": "c"}}}})
    with pytest.raises(ModelFilesMissingError, match="the models folder this node loads from"):
        client.check_graphs(
            {"x": {"1": {"class_type": "NewNode", "inputs": {"lora_name": "style.safetensors"}}}}
        )
