"""The example suite's graph per config for driving the fake server directly, and reading its
results back (submit and wait, the image of a history entry, whether bytes decode). Shared by
tests/test_fake_server.py, tests/test_fake_faults.py and tests/test_vram.py."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import httpx
import numpy as np
from PIL import Image

from pytest_zimage_quality.testing import FakeComfyUI

from .suites import REPO

__all__ = ["CONFIGS", "EXAMPLE", "WORKFLOW", "decodes", "image_of", "run", "zimage_graph"]


EXAMPLE = REPO / "example_suite"
WORKFLOW: dict[str, Any] = json.loads((EXAMPLE / "z_image_turbo_t2i_api.json").read_text())
CONFIGS = {
    "bf16": ("z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors"),
    "fp8scaled": ("z_image_turbo_fp8_e4m3fn.safetensors", "qwen_3_4b.safetensors"),
    "nvfp4": ("z_image_turbo_nvfp4.safetensors", "qwen_3_4b.safetensors"),
    "nvfp4_fp8e": ("z_image_turbo_nvfp4.safetensors", "qwen_3_4b_fp8_mixed.safetensors"),
}


def zimage_graph(
    config: str = "bf16", text: str = "a red fox in the snow", seed: int = 42, size: int = 128
) -> dict[str, Any]:
    graph = copy.deepcopy(WORKFLOW)
    unet, clip = CONFIGS[config]
    graph["28"]["inputs"]["unet_name"] = unet
    graph["30"]["inputs"]["clip_name"] = clip
    graph["27"]["inputs"]["text"] = text
    graph["3"]["inputs"]["seed"] = seed
    graph["13"]["inputs"].update(width=size, height=size)
    graph["9"]["inputs"]["filename_prefix"] = f"fake/{config}"
    return graph


def run(
    fake: FakeComfyUI, http: httpx.Client, graph: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """Submit, wait until the fake is idle, return the history entry."""
    response = http.post("/prompt", json={"prompt": graph, **fields})
    assert response.status_code == 200, response.text
    prompt_id = response.json()["prompt_id"]
    fake.wait_idle(30)
    entry: dict[str, Any] = http.get(f"/history/{prompt_id}").json()[prompt_id]
    return entry


def image_of(
    http: httpx.Client, entry: dict[str, Any], node: str = "9"
) -> tuple[np.ndarray, dict[str, str]]:
    ref = entry["outputs"][node]["images"][0]
    data = http.get("/view", params=ref).content
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64), dict(getattr(image, "text", {}))


def decodes(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except (OSError, SyntaxError):
        return False
    return True
