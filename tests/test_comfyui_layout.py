"""The client package's public surface, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import pytest_zimage_quality.comfyui as comfyui


def test_public_names_resolve() -> None:
    for name in comfyui.__all__:
        assert getattr(comfyui, name) is not None
    from pytest_zimage_quality import ComfyUIClient

    assert ComfyUIClient is comfyui.ComfyUIClient
    assert ComfyUIClient.__module__ == "pytest_zimage_quality.comfyui._client"


def test_the_value_types_come_without_the_network_stack() -> None:
    probe = (
        "import sys\n"
        "from pytest_zimage_quality.comfyui import GeneratedImage, FinishedPrompt\n"
        "import pytest_zimage_quality.scheduler\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
        ).stdout.split()
    )
    assert not loaded & {"httpx", "websockets", "pytest"}
    assert "pytest_zimage_quality.comfyui._client" not in loaded
