"""Expected text of a prompt and the text-accuracy formula, with literal cases."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_zimage_quality.text_accuracy import (
    expected_text,
    is_cjk,
    normalize_text,
    quoted_text,
    text_accuracy,
)


@pytest.mark.parametrize(
    ("prompt", "quoted"),
    [
        ('wooden storefront sign reading "CLOSED FOR REPAIRS"', "CLOSED FOR REPAIRS"),
        ("a neon sign that says 'OPEN 24/7' at night", "OPEN 24/7"),
        ("a poster with “Hello, World!” in bold type", "Hello, World!"),
        ("a banner reading ‘SALE’", "SALE"),
        ("牌匾上寫著「古風水墨畫」", "古風水墨畫"),
        ("書名『紅樓夢』的封面", "紅樓夢"),
        ("招牌写着'开业大吉'", "开业大吉"),
        ('a sign "OPEN" next to a sign "CLOSED"', "OPEN CLOSED"),
        ('quote at the start: "  padded  " text', "padded"),
    ],
)
def test_quoted_text_finds_each_kind_of_quote(prompt: str, quoted: str) -> None:
    assert quoted_text(prompt) == quoted


@pytest.mark.parametrize(
    "prompt",
    [
        "photorealistic portrait of a young woman in a coffee shop",
        "a dog's bowl and the cat's toy",
        "the dogs' bowls on the floor",
        'a 12" vinyl record and a 7" single',
        'an empty sign "" and a blank one "   "',
        "古風水墨畫,一位身穿青色長袍的書生站在竹林中",
        'a quote that does not "close',
        'a quote "across\nlines"',
    ],
)
def test_quoted_text_ignores_apostrophes_inch_marks_and_empty_quotes(prompt: str) -> None:
    assert quoted_text(prompt) is None


def test_expected_text_prefers_the_declared_text() -> None:
    prompt = 'a sign reading "OPEN"'
    assert expected_text(prompt, declared="CLOSED", from_quotes=True) == "CLOSED"
    assert expected_text(prompt, from_quotes=True) == "OPEN"
    assert expected_text(prompt) is None  # quotes are used only when the suite says so
    assert expected_text("a cat", from_quotes=True) is None
    with pytest.raises(ValueError, match="empty once whitespace is ignored"):
        expected_text(prompt, declared="  \n ")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("CLOSED FOR REPAIRS", "closed for repairs"),
        ("  CLOSED\nFOR\t\tREPAIRS  ", "closed for repairs"),
        ("ＣＬＯＳＥＤ　ＦＯＲ", "closed for"),  # full-width letters and ideographic space
        ("Straße", "strasse"),  # casefold, not lower
        ("ﬁne", "fine"),  # NFKC ligature
        ("古風 水墨\n畫", "古風水墨畫"),
        ("OPEN 古風", "open古風"),
        ("營業中 OPEN", "營業中open"),
        ("A, B!", "a, b!"),  # punctuation is kept
        ("", ""),
    ],
)
def test_normalize_text_rules(raw: str, normal: str) -> None:
    assert normalize_text(raw) == normal


def test_is_cjk() -> None:
    assert all(is_cjk(c) for c in "古風水墨畫ひらカナ한글，")
    assert not any(is_cjk(c) for c in "Aé9 ,Ω")


@pytest.mark.parametrize(
    ("read", "expected", "accuracy"),
    [
        ("CLOSED FOR REPAIRS", "CLOSED FOR REPAIRS", 1.0),
        ("closed for\nrepairs", "CLOSED FOR REPAIRS", 1.0),
        ("CLOSED FOR REPAIRZ", "CLOSED FOR REPAIRS", 1 - 1 / 18),
        ("CLOSED FOR", "CLOSED FOR REPAIRS", 1 - 8 / 18),
        ("", "CLOSED FOR REPAIRS", 0.0),
        ("古風水墨畫", "古風水墨畫", 1.0),
        ("古風 水墨\n畫", "古風水墨畫", 1.0),
        ("古風火墨畫", "古風水墨畫", 0.8),  # one wrong character is one edit of five
        ("古風水墨", "古風水墨畫", 0.8),
        ("XYZ", "古風水墨畫", 0.0),
        ("OPEN OPEN", "OPEN", 1 - 5 / 9),  # extra text read counts against it
    ],
)
def test_text_accuracy_values(read: str, expected: str, accuracy: float) -> None:
    assert text_accuracy(read, expected) == pytest.approx(accuracy)


def test_text_accuracy_refuses_an_empty_expected_text() -> None:
    with pytest.raises(ValueError, match="cannot be scored for text accuracy"):
        text_accuracy("anything", " \t ")


@given(st.text(max_size=30), st.text(max_size=30).filter(lambda t: normalize_text(t) != ""))
def test_text_accuracy_is_in_unit_interval_and_one_only_when_equal(read: str, want: str) -> None:
    acc = text_accuracy(read, want)
    assert 0.0 <= acc <= 1.0
    assert (acc == 1.0) == (normalize_text(read) == normalize_text(want))


def test_missing_rapidfuzz_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidfuzz", None)
    monkeypatch.setitem(sys.modules, "rapidfuzz.distance", None)
    with pytest.raises(ModuleNotFoundError, match=r"pytest-zimage-quality\[ocr\]"):
        text_accuracy("a", "a")


def test_metric_modules_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import pytest_zimage_quality.text_accuracy, pytest_zimage_quality.ocr\n"
        "import pytest_zimage_quality.similarity\n"
        "heavy = {'rapidocr', 'onnxruntime', 'rapidfuzz', 'skimage', 'numpy', 'PIL', 'torch',"
        " 'cv2'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
