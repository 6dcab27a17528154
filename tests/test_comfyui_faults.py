"""The client against each of the fake's fault modes (issue 12): every wait bounded, memory
bounded, lost work recovered, secrets and control characters kept out of messages and logs.

Each test arms one fault, runs the client with short bounds, and checks: the outcome (an
image, or one clear error), that it came within its deadline, and what the server saw.
"""

from __future__ import annotations

import gc
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pytest_zimage_quality.comfyui import ComfyUIClient
from pytest_zimage_quality.errors import (
    ComfyUIError,
    ComfyUIHTTPError,
    ComfyUIProtocolError,
    ComfyUIUnreachableError,
    GenerationFailedError,
    GenerationInterruptedError,
    GenerationTimeoutError,
    ImageDecodeError,
)
from pytest_zimage_quality.testing import FakeComfyUI

WORKFLOW = Path(__file__).resolve().parent.parent / "example_suite" / "z_image_turbo_t2i_api.json"
OUTPUT = "9"
SECRET = "s3cr3t-T0KEN-never-shown"


def graph(seed: int = 42, *, size: int = 64) -> dict[str, Any]:
    g: dict[str, Any] = json.loads(WORKFLOW.read_text("utf-8"))
    g["13"]["inputs"]["width"] = g["13"]["inputs"]["height"] = size
    g["3"]["inputs"]["seed"] = seed
    g[OUTPUT]["inputs"]["filename_prefix"] = f"zq_faults/case-s{seed}"
    return g


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture
def fake() -> Iterator[FakeComfyUI]:
    server = FakeComfyUI(image_latency=0.05).start()
    yield server
    server.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., ComfyUIClient]]:
    made: list[ComfyUIClient] = []

    def make(url: str, **options: Any) -> ComfyUIClient:
        settings: dict[str, Any] = {"backoff": 0.01, "timeout": 4.0, "confirm_interval": 0.3}
        settings.update(options)
        client = ComfyUIClient(url, **settings)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]) -> ComfyUIClient:
    c = make_client(fake.url, headers=[("Authorization", f"Bearer {SECRET}")])
    c.connect()
    return c


class Within:
    """``with Within(s):`` fails the test when the block takes longer than ``s`` seconds."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> Within:
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.took = time.monotonic() - self.start
        assert self.took < self.seconds, f"took {self.took:.1f} s, bound {self.seconds} s"


def queue_is_clean(fake: FakeComfyUI, client: ComfyUIClient) -> bool:
    running, pending = client.queue()
    return not running and not pending


# -- connection level --------------------------------------------------------------------


@pytest.mark.slow  # waits out a deadline or a downtime (seconds)
def test_refused_then_back_within_the_outage_budget(
    fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]
) -> None:
    client = make_client(fake.url, outage=10.0)
    client.connect()
    fake.faults.refuse_connections(for_seconds=1.0)
    with Within(8):
        image = client.generate(graph(), output_node=OUTPUT)
    assert image.png.startswith(b"\x89PNG")


@pytest.mark.slow  # waits out a deadline or a downtime (seconds)
def test_a_server_that_stays_down_fails_once_then_fast(
    fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]
) -> None:
    client = make_client(fake.url, outage=1.0)
    client.connect()
    fake.faults.refuse_connections()
    with Within(6), pytest.raises(ComfyUIUnreachableError) as info:
        client.generate(graph(), output_node=OUTPUT)
    text = str(info.value)
    assert "refused connections for longer than the outage budget (1 s)" in text
    assert "went away during the run" in text
    assert "--listen" not in text
    with Within(1), pytest.raises(ComfyUIUnreachableError):  # the budget is spent: fast
        client.generate(graph(7), output_node=OUTPUT)


@pytest.mark.slow  # waits out a deadline or a downtime (seconds)
def test_a_silent_server_fails_within_the_read_bound(
    make_client: Callable[..., ComfyUIClient],
) -> None:
    # a listener that never accepts: the kernel completes the handshake, nothing answers
    # (the fake's go_silent() does the same from its event loop)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = make_client(url, timeout=2.0)  # http bound: max(2, 2/4) = 2 s
        with Within(6), pytest.raises(ComfyUIUnreachableError, match="sent nothing"):
            client.connect()
        client.close()


def test_restart_mid_run_requeues_the_lost_prompt_once(
    fake: FakeComfyUI, client: ComfyUIClient
) -> None:
    fake.faults.restart(downtime=0.5, when=lambda run: 42 in run.seeds)
    with Within(15):
        image = client.generate(graph(42), output_node=OUTPUT)
    assert image.png.startswith(b"\x89PNG")
    submitted = [json.loads(r.body)["prompt_id"] for r in fake.requests if r.path == "/prompt"]
    assert len(submitted) == 2
    assert len(set(submitted)) == 1
    assert fake.faults.restarts == 1
    assert queue_is_clean(fake, client)


def test_a_prompt_lost_in_every_restart_says_the_server_restarted(
    fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]
) -> None:
    client = make_client(fake.url, resubmits=1)
    client.connect()
    fake.faults.restart(downtime=0.2, when=lambda run: True, times=2)
    with Within(15), pytest.raises(GenerationInterruptedError) as info:
        client.generate(graph(), output_node=OUTPUT)
    text = str(info.value)
    assert "the server restarted and lost it (2 times)" in text
    assert "interrupted" not in text.split("hint:")[1]


# -- HTTP faults ---------------------------------------------------------------------------


def test_one_500_on_view_is_retried(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.http_error("/view", 500, times=1)
    assert client.generate(graph(), output_node=OUTPUT).png.startswith(b"\x89PNG")


@pytest.mark.slow  # waits out a deadline or a downtime (seconds)
def test_a_dropped_prompt_reply_is_found_in_the_queue_within_seconds(
    fake: FakeComfyUI, client: ComfyUIClient
) -> None:
    fake.faults.hang("/prompt", times=1)  # the request is read, the reply never comes
    try:
        with Within(12):  # submit_reply (min(5, http)) + a look at /queue, not 30 s
            client.generate(graph(), output_node=OUTPUT)
    except ComfyUIError:
        pass  # a fake that never queues a hung request: then it must not be sent twice
    finally:
        fake.faults.release()
    assert len([r for r in fake.requests if r.path == "/prompt"]) <= 2


@pytest.mark.slow  # waits out a deadline or a downtime (seconds)
def test_a_trickling_view_fails_at_the_download_deadline(
    fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]
) -> None:
    client = make_client(fake.url, http_timeout=1.5, retries=0)
    client.connect()
    fake.faults.trickle_view(every=0.5, chunk=1)
    with Within(5), pytest.raises(ComfyUIUnreachableError, match="whole reply within"):
        client.generate(graph(), output_node=OUTPUT)


def test_a_huge_view_is_refused_at_its_cap(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.huge_view(size=2**31)
    with Within(20), pytest.raises(ComfyUIProtocolError, match="sent more than"):
        client.generate(graph(), output_node=OUTPUT)  # 64x64 asked: cap 4*4*64*64 + 16 MiB


def test_a_pixel_bomb_is_refused_before_decoding(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.pixel_bomb(side=13000)
    with pytest.raises(ImageDecodeError, match="13000x13000 pixels") as info:
        client.generate(graph(), output_node=OUTPUT)
    assert "refused before decoding" in str(info.value)


def test_a_file_without_the_case_prefix_is_not_this_case_image(
    fake: FakeComfyUI, client: ComfyUIClient
) -> None:
    fake.faults.wrong_filename(prefix="ComfyUI")
    with pytest.raises(ComfyUIProtocolError, match="not this case's image"):
        client.generate(graph(), output_node=OUTPUT)


@pytest.mark.slow  # waits out a deadline or a downtime (seconds)
def test_status_frames_never_extend_a_queued_deadline(
    fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]
) -> None:
    client = make_client(fake.url, timeout=1.5)
    client.connect()
    fake.faults.hold_queue(status_every=0.1)
    try:
        with Within(8), pytest.raises(GenerationTimeoutError) as info:
            client.generate(graph(), output_node=OUTPUT)
    finally:
        fake.faults.release()
    text = str(info.value)
    assert "still queued" in text
    assert "deleted from the server's queue" in text
    assert queue_is_clean(fake, client)


def test_a_slow_sampler_times_out_and_is_interrupted(
    fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]
) -> None:
    client = make_client(fake.url, timeout=1.0)
    client.connect()
    fake.faults.stall_generation(30.0)
    with Within(8), pytest.raises(GenerationTimeoutError) as info:
        client.generate(graph(), output_node=OUTPUT)
    assert "interrupted on the server" in str(info.value)
    assert "removed from the server's queue" not in str(info.value)


def test_a_websocket_bomb_costs_no_memory(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.websocket_bomb()
    with Within(15):
        image = client.generate(graph(), output_node=OUTPUT)  # recovered through history
    assert image.png.startswith(b"\x89PNG")


def test_a_websocket_drop_mid_run_is_recovered(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.drop_websocket(after_frames=2)
    assert client.generate(graph(), output_node=OUTPUT).png.startswith(b"\x89PNG")
    submitted = [r for r in fake.requests if r.path == "/prompt"]
    assert len(submitted) == 1  # a dropped socket alone never requeues


# -- what the user reads -------------------------------------------------------------------


def test_out_of_memory_says_out_of_memory(fake: FakeComfyUI, client: ComfyUIClient) -> None:
    fake.faults.out_of_memory()
    with pytest.raises(GenerationFailedError) as info:
        client.generate(graph(), output_node=OUTPUT)
    assert "ran out of memory" in info.value.hint
    assert "loader" not in info.value.hint


def test_control_characters_from_the_server_are_escaped(
    fake: FakeComfyUI, client: ComfyUIClient
) -> None:
    from pytest_zimage_quality._fake.hostile import CONTROL_TEXT

    fake.faults.fail_next_run(message=CONTROL_TEXT)
    with pytest.raises(GenerationFailedError) as info:
        client.generate(graph(), output_node=OUTPUT)
    text = str(info.value)
    assert "\x1b" not in text
    assert "\x07" not in text
    assert "\u202e" not in text
    assert "\\x1b" in text
    fake.faults.control_characters_error(route="/queue", status=500)
    with pytest.raises(ComfyUIHTTPError) as http_info:
        client.queue()
    assert "\x1b" not in str(http_info.value)


def test_header_echo_and_debug_logs_never_show_the_secret(
    fake: FakeComfyUI,
    make_client: Callable[..., ComfyUIClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(
        fake.url.replace("://", "://user:pa55-word-secret@"),
        headers=[("Authorization", f"Bearer {SECRET}")],
    )
    client.connect()  # websockets logs the handshake headers at DEBUG
    fake.faults.echo_headers_error(route="/queue", status=500)
    with pytest.raises(ComfyUIHTTPError) as info:
        client.queue()
    text = str(info.value)
    assert SECRET not in text
    assert "pa55-word-secret" not in text
    assert "***" in text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("websockets") for r in caplog.records)
    assert SECRET not in logged
    assert "pa55-word-secret" not in logged
    assert SECRET not in repr(client)


def test_a_header_with_a_line_break_is_refused_without_its_value(fake: FakeComfyUI) -> None:
    with pytest.raises(ComfyUIError) as info:
        ComfyUIClient(fake.url, headers=[("Authorization", f"Basic {SECRET}\nX: y")])
    assert SECRET not in str(info.value)
    assert "line break" in str(info.value)


def test_a_long_basic_credential_works(
    fake: FakeComfyUI, make_client: Callable[..., ComfyUIClient]
) -> None:
    import base64

    token = base64.b64encode(b"user:" + b"p" * 200).decode("ascii")  # never wrapped
    client = make_client(fake.url, headers=[("Authorization", f"Basic {token}")])
    assert client.connect().comfyui_version
    seen = [
        {k.lower(): v for k, v in r.headers.items()}.get("authorization")
        for r in fake.requests
        if r.path == "/system_stats"
    ]
    assert seen[-1] == f"Basic {token}"


def test_gzip_bodies_are_capped_after_inflation() -> None:
    import gzip

    from pytest_zimage_quality.comfyui._body import BodyTooLarge, read_body

    bomb = gzip.compress(b"\0" * (8 * 2**20))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "gzip"}, content=bomb)

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        request = http.build_request("GET", "http://x/y")
        response = http.send(request, stream=True)
        with pytest.raises(BodyTooLarge):
            read_body(response, limit=2**20, deadline=time.monotonic() + 5)
