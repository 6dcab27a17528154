"""Custom quality tests with the plugin's fixtures (shown in docs/fixtures.md).

Run by tests/test_examples.py against the fake ComfyUI; in your project, run them with e.g.
``pytest tests/quality --zimage-suite=example_suite/zimage_turbo.toml --zimage-host=gb10:8188``.
"""

from __future__ import annotations

from typing import Any

import pytest


def test_sign_text_survives(zimage_case: Any, zimage_result: Any, zimage_clip: Any) -> None:
    if "text" not in zimage_case.prompt.tags:
        pytest.skip("not a text prompt")
    score = zimage_clip.score([zimage_result.png], ['a sign that says "CLOSED FOR REPAIRS"'])[0]
    assert score > 0.25, f"{zimage_case.id}: text prompt scored {score:.3f}"


def test_fp8_stays_close(zimage_case: Any, zimage_result: Any) -> None:
    if zimage_case.config.key != "fp8scaled":
        pytest.skip("only FP8")
    assert zimage_result.scores.lpips < 0.25
