"""The OCR scorer: RapidOCR's shipped models read back text drawn independently with Pillow.

Model-running tests are ``slow`` (a few seconds on one core). The CJK case needs a CJK font
on the machine (CI installs ``fonts-noto-cjk``); it skips without one, unless
``ZIMAGE_REQUIRE_CJK_FONT=1`` makes a missing font a failure.
"""

from __future__ import annotations

import hashlib
import os
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pytest_zimage_quality import ScorerError
from pytest_zimage_quality import ocr as ocr_mod
from pytest_zimage_quality._fake.render import find_cjk_font
from pytest_zimage_quality.ocr import DETECTOR_SIDE, OCRScorer, _shrink, reading_order

pytest.importorskip("rapidocr", reason="the ocr extra is not installed")


def sign(
    text_lines: list[str], size: int, *, font: ImageFont.FreeTypeFont | None = None
) -> Image.Image:
    """Dark text on a light board, drawn without any of the package's code."""
    img = Image.new("RGB", (size, size), (90, 60, 40))
    draw = ImageDraw.Draw(img)
    draw.rectangle((size // 16, size // 4, size - size // 16, 3 * size // 4), fill=(245, 240, 225))
    glyph = font or ImageFont.load_default(size // 12)
    if font is not None:
        glyph = font.font_variant(size=size // 12)
    for i, line in enumerate(text_lines):
        draw.text((size // 10, size // 3 + i * size // 8), line, font=glyph, fill=(20, 20, 20))
    return img


def cjk_font() -> ImageFont.FreeTypeFont:
    path = find_cjk_font()
    if path is None:
        if os.environ.get("ZIMAGE_REQUIRE_CJK_FONT") == "1":
            pytest.fail("ZIMAGE_REQUIRE_CJK_FONT=1 but no CJK font is installed (fonts-noto-cjk)")
        pytest.skip("no CJK font on this machine (install fonts-noto-cjk)")
    return ImageFont.truetype(str(path), 40)


@pytest.fixture(scope="module")
def scorer() -> OCRScorer:
    return OCRScorer.load(threads=1)


# ----------------------------------------------------------------------------- pure parts


def test_reading_order_joins_lines_top_to_bottom_and_words_left_to_right() -> None:
    def box(x: float, y: float, w: float = 50, h: float = 20) -> list[tuple[float, float]]:
        return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]

    boxes = [box(200, 102), box(10, 300), box(10, 100), box(120, 98)]
    assert reading_order(boxes, ["C", "D", "A", "B"]) == "A B C\nD"
    assert reading_order([], []) == ""


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'pytest-zimage-quality\[ocr\]'"):
        OCRScorer.load()


def test_cuda_without_onnxruntime_gpu_is_one_clear_error() -> None:
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here")
    with pytest.raises(ScorerError, match="onnxruntime-gpu"):
        OCRScorer.load("cuda")
    with pytest.raises(ScorerError, match="not cpu, auto, cuda or cuda:N"):
        OCRScorer.load("tpu")


def test_a_corrupt_model_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr_mod, "_sha256", lambda path: "0" * 64)
    with pytest.raises(ScorerError, match="is corrupt") as info:
        OCRScorer.load()
    assert "reinstall rapidocr" in str(info.value)


# ----------------------------------------------------------------------------- the model


@pytest.mark.slow
def test_models_identity_is_the_shipped_files_sha256(scorer: OCRScorer) -> None:
    assert [m.stage for m in scorer.models] == ["det", "cls", "rec"]
    for m in scorer.models:
        assert hashlib.sha256(m.path.read_bytes()).hexdigest() == m.sha256
    assert len(scorer.weights_identity) == 64
    info = scorer.info()
    assert info["device"] == "cpu"
    assert info["random_weights"] is False
    assert info["models"]["rec"]["sha256"] == scorer.models[2].sha256
    assert "TextAccuracy: rapidocr" in scorer.describe()


@pytest.mark.slow
@pytest.mark.parametrize("size", [1024, 256])
def test_reads_back_english_text_drawn_with_pillow(scorer: OCRScorer, size: int) -> None:
    img = sign(["CLOSED FOR", "REPAIRS"], size)
    as_tensor_layout = np.asarray(img).transpose(2, 0, 1).copy()  # (3, H, W) as images.py
    scores, read = scorer.score([img, as_tensor_layout], ["CLOSED FOR REPAIRS"] * 2)
    assert read == ["CLOSED FOR\nREPAIRS"] * 2
    assert scores == [1.0, 1.0]


@pytest.mark.slow
def test_reads_back_chinese_text_drawn_with_pillow(scorer: OCRScorer) -> None:
    img = sign(["古風水墨畫"], 512, font=cjk_font())
    scores, read = scorer.score([img], ["古風水墨畫"])
    assert read == ["古風水墨畫"]
    assert scores == [1.0]


@pytest.mark.slow
def test_misspelt_and_blank_images_score_below_one(scorer: OCRScorer) -> None:
    misspelt = sign(["CLOSED FOR", "REPIARS"], 512)
    blank = Image.new("RGB", (512, 512), (128, 128, 128))
    scores, read = scorer.score([misspelt, blank], ["CLOSED FOR REPAIRS"] * 2)
    assert read == ["CLOSED FOR\nREPIARS", ""]
    assert scores == [pytest.approx(1 - 2 / 18), 0.0]


def test_score_checks_lengths_and_image_shapes(scorer: OCRScorer) -> None:
    with pytest.raises(ValueError, match="2 images but 1 expected texts"):
        scorer.score([np.zeros((3, 8, 8), np.uint8)] * 2, ["A"])
    with pytest.raises(ScorerError, match="8-bit RGB"):
        scorer.read(np.zeros((8, 8), np.float32))


def test_large_images_are_shrunk_to_the_detectors_side_before_reading() -> None:
    wide = np.zeros((1024, 2048, 3), dtype=np.uint8)
    assert _shrink(wide, DETECTOR_SIDE).shape == (DETECTOR_SIDE, 1472, 3)
    small = np.zeros((512, 700, 3), dtype=np.uint8)
    assert _shrink(small, DETECTOR_SIDE) is small  # smaller: the detector scales it up itself
    assert _shrink(wide, None) is wide
