"""The fake draws a prompt's quoted text, degraded with its config's level, and a real OCR
model reads the difference: accuracy separates BF16 from the most perturbed config."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pytest_zimage_quality._fake.models import DEFAULT_MODELS, ModelRegistry
from pytest_zimage_quality._fake.render import Scene, find_cjk_font, render_scene

SIGN = 'wooden storefront sign reading "CLOSED FOR REPAIRS"'
PANEL = np.array([236, 226, 200], np.uint8)
SEEDS = (42, 7777, 12345)
# The example suite's configs, as (label, files) the fake's ModelRegistry sees.
CONFIGS = {
    "BF16": ("z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "ae.safetensors"),
    "FP8scaled": (
        "z_image_turbo_fp8_e4m3fn.safetensors",
        "qwen_3_4b.safetensors",
        "ae.safetensors",
    ),
    "NVFP4": ("z_image_turbo_nvfp4.safetensors", "qwen_3_4b.safetensors", "ae.safetensors"),
    "NVFP4+FP8e": (
        "z_image_turbo_nvfp4.safetensors",
        "qwen_3_4b_fp8_mixed.safetensors",
        "ae.safetensors",
    ),
}


def scene(prompt: str, seed: int, size: int, config: str) -> Scene:
    return ModelRegistry(DEFAULT_MODELS).scene(prompt, seed, size, size, CONFIGS[config])


def panel_share(pixels: np.ndarray) -> float:
    return float(np.mean(np.all(pixels == PANEL, axis=-1)))


def test_quoted_text_gets_a_panel_and_other_prompts_do_not() -> None:
    with_text = render_scene(scene(SIGN, 42, 256, "BF16"))
    without = render_scene(scene("a photo of a cat on a red sofa", 42, 256, "BF16"))
    assert panel_share(with_text) > 0.15
    assert panel_share(without) < 0.01


def test_text_images_are_deterministic_and_equal_across_reference_level_configs() -> None:
    a = render_scene(scene(SIGN, 7777, 256, "BF16"))
    b = render_scene(scene(SIGN, 7777, 256, "BF16"))
    assert np.array_equal(a, b)
    nvfp4 = scene(SIGN, 7777, 256, "NVFP4+FP8e")
    assert nvfp4.level == pytest.approx(0.35)
    c, d = render_scene(nvfp4), render_scene(nvfp4)
    assert np.array_equal(c, d)
    assert not np.array_equal(a, c)


def test_text_too_small_to_read_is_not_drawn() -> None:
    assert panel_share(render_scene(scene(SIGN, 42, 64, "BF16"))) < 0.01
    assert panel_share(render_scene(scene(SIGN, 42, 128, "BF16"))) > 0.15


def test_a_broken_model_draws_no_text() -> None:
    registry = ModelRegistry(DEFAULT_MODELS, broken=["z_image_turbo_nvfp4.safetensors"])
    off = registry.scene(SIGN, 42, 256, 256, CONFIGS["NVFP4"])
    assert panel_share(render_scene(off)) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("size", [1024, 256])
def test_ocr_accuracy_separates_bf16_from_the_most_perturbed_config(size: int) -> None:
    pytest.importorskip("rapidocr", reason="the ocr extra is not installed")
    from pytest_zimage_quality.ocr import OCRScorer

    scorer = OCRScorer.load()
    mean = {}
    for config in ("BF16", "NVFP4+FP8e"):
        images = [render_scene(scene(SIGN, seed, size, config)) for seed in SEEDS]
        scores, read = scorer.score(images, ["CLOSED FOR REPAIRS"] * len(images))
        mean[config] = sum(scores) / len(scores)
        if config == "BF16":
            assert read == ["CLOSED FOR\nREPAIRS"] * len(SEEDS)
    assert mean["BF16"] == 1.0
    assert mean["NVFP4+FP8e"] < mean["BF16"] - 0.3, mean


@pytest.mark.slow
def test_the_fake_draws_cjk_quotes_legibly() -> None:
    pytest.importorskip("rapidocr", reason="the ocr extra is not installed")
    if find_cjk_font() is None:
        if os.environ.get("ZIMAGE_REQUIRE_CJK_FONT") == "1":
            pytest.fail("ZIMAGE_REQUIRE_CJK_FONT=1 but no CJK font is installed (fonts-noto-cjk)")
        pytest.skip("no CJK font on this machine (install fonts-noto-cjk)")
    from pytest_zimage_quality.ocr import OCRScorer

    image = render_scene(scene("牌匾上寫著「古風水墨畫」", 42, 512, "BF16"))
    scores, read = OCRScorer.load().score([image], ["古風水墨畫"])
    assert (scores, read) == ([1.0], ["古風水墨畫"])
