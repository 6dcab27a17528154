"""The contract suite's target: a fresh FakeComfyUI, or the real ComfyUI at ZIMAGE_CONTRACT_HOST.

    ZIMAGE_CONTRACT_HOST=http://127.0.0.1:8188 pytest tests/contract

runs the same protocol checks against a live server (model-free graphs only, so any ComfyUI
with the built-in ``pixel_space`` VAE works). ``ZIMAGE_CONTRACT_FAKE_VERSION=0.3.64`` makes
the fake emulate that older version instead of 0.18.1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from pytest_zimage_quality.testing import FakeComfyUI

from .comfy_protocol import Target, target_at

HOST_ENV = "ZIMAGE_CONTRACT_HOST"
FAKE_VERSION_ENV = "ZIMAGE_CONTRACT_FAKE_VERSION"


def pytest_report_header() -> str:
    host = os.environ.get(HOST_ENV)
    return f"contract target: {host}" if host else "contract target: FakeComfyUI"


@pytest.fixture
def comfy() -> Iterator[Target]:
    """The server under test. The fake mirrors the recorded servers: empty model folders, and
    VAE decoding costing 1 s per megapixel so a 4096x4096 decode is slow enough to interrupt."""
    host = os.environ.get(HOST_ENV)
    if host:
        url = host if "://" in host else f"http://{host}"
        with target_at(url.rstrip("/")) as target:
            yield target
        return
    version = os.environ.get(FAKE_VERSION_ENV, "0.18.1")
    fake_server = FakeComfyUI(models={}, pixel_latency=1.0, version=version)
    with fake_server as fake, target_at(fake.url) as target:
        target.fake = fake
        yield target


@pytest.fixture
def fake_only(comfy: Target) -> FakeComfyUI:
    """Skip unless the target is the fake (checks of fake-only helpers)."""
    if not comfy.is_fake:
        pytest.skip("needs the FakeComfyUI target")
    fake: FakeComfyUI = comfy.fake
    return fake
