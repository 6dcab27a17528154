"""The suite file: the example suite reproduces the study; every bad input is one clear SuiteError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_zimage_quality import SuiteError, load_suite
from pytest_zimage_quality.workflow import InputRef

from .conftest import EXAMPLE_SUITE, write_small_suite

STUDY_PROMPTS = {
    "photo_woman": "photorealistic portrait of a young woman in a coffee shop",
    "photo_machine": "close-up photo of a vintage mechanical pocket watch with intricate gears",
    "anime": "anime style illustration, kimono, cherry blossoms",
    "text_render": 'wooden storefront sign reading "CLOSED FOR REPAIRS"',
    "chinese": "古風水墨畫,一位身穿青色長袍的書生站在竹林中",
    "abstract": "surreal floating islands suspended in pastel sky, waterfalls cascading",
}


def test_example_suite_is_the_study() -> None:
    suite = load_suite(EXAMPLE_SUITE)
    assert {p.key: p.text for p in suite.prompts} == STUDY_PROMPTS
    assert [c.label for c in suite.configs] == ["BF16", "FP8scaled", "NVFP4", "NVFP4+FP8e"]
    assert suite.reference_config.label == "BF16"
    assert suite.seeds == (42, 7777, 12345)
    files = {c.label: {str(ref): v for ref, v in c.overrides} for c in suite.configs}
    assert files["NVFP4+FP8e"] == {
        "28.unet_name": "z_image_turbo_nvfp4.safetensors",
        "30.clip_name": "qwen_3_4b_fp8_mixed.safetensors",
    }
    assert files["BF16"]["30.clip_name"] == "qwen_3_4b.safetensors"
    cases = suite.cases()
    assert len(cases) == 72
    assert len({c.id for c in cases}) == 72
    assert cases[0].id == "photo_woman-bf16-s42"
    assert "photo_woman-nvfp4-s42" in {c.id for c in cases}
    # Each config's cases are together, the reference first.
    blocks = [c.config.key for c in cases]
    assert blocks == sorted(blocks, key=["bf16", "fp8scaled", "nvfp4", "nvfp4_fp8e"].index)


def test_graph_for_a_case_sets_text_seed_and_overrides() -> None:
    suite = load_suite(EXAMPLE_SUITE)
    case = suite.make_case("chinese", "nvfp4_fp8e", 7777)
    graph = suite.graph_for(case, prefix="zimage-quality/x")
    assert graph["27"]["inputs"]["text"] == STUDY_PROMPTS["chinese"]
    assert graph["3"]["inputs"]["seed"] == 7777
    assert graph["28"]["inputs"]["unet_name"] == "z_image_turbo_nvfp4.safetensors"
    assert graph["30"]["inputs"]["clip_name"] == "qwen_3_4b_fp8_mixed.safetensors"
    assert graph["9"]["inputs"]["filename_prefix"] == "zimage-quality/x"
    # The template itself is untouched.
    assert suite.workflow.value(InputRef("3", "seed")) == 0


def test_filters_and_seed_override(small_suite: Path) -> None:
    suite = load_suite(small_suite)
    cases = suite.cases(configs=["nvfp4"], prompts=["ink"], seeds=[9])
    assert [c.id for c in cases] == ["ink-nvfp4-s9"]
    with pytest.raises(KeyError, match="unknown config 'nope'"):
        suite.cases(configs=["nope"])


def test_expected_fail_pair_wins_over_prompt(tmp_path: Path) -> None:
    path = write_small_suite(
        tmp_path,
        extra="""
        [[expected_fail]]
        prompt = "sign"
        reason = "text is hard"

        [[expected_fail]]
        prompt = "sign"
        config = "nvfp4"
        reason = "FP4 text rendering"
        strict = true
        """,
    )
    suite = load_suite(path)
    nv = suite.make_case("sign", "nvfp4", 1).expected_fail
    fp8 = suite.make_case("sign", "fp8", 1).expected_fail
    assert nv is not None
    assert nv.reason == "FP4 text rendering"
    assert nv.strict is True
    assert fp8 is not None
    assert fp8.reason == "text is hard"
    assert fp8.strict is None
    assert suite.make_case("cat", "fp8", 1).expected_fail is None


def _error(path: Path) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    return info.value


def _rewrite(path: Path, old: str, new: str) -> Path:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        ("seeds = [1, 2, 3]", "seeds = [1, 2, 3", None, "invalid TOML"),
        ('reference = "bf16"\n', "", "suite", "missing required key 'reference'"),
        (
            'reference = "bf16"',
            'reference = "fp16"',
            "suite.reference",
            "'fp16' is not one of the configs",
        ),
        ('key = "ink"', 'key = "cat"', "prompts[1].key", "duplicate prompt key 'cat'"),
        (
            'overrides."28".unet_name',
            'overrides."99".unet_name',
            'configs.bf16.overrides."99".unet_name',
            "node id '99' is not in the workflow",
        ),
        (
            'overrides."28".unet_name = "z_image_turbo_nvfp4',
            'overrides."28".unet = "z_image_turbo_nvfp4',
            'configs.nvfp4.overrides."28".unet',
            "has no input 'unet'",
        ),
        (
            'overrides."28".unet_name = "z_image_turbo_fp8',
            'overrides."3".model = ["1", 0]\n#',
            'configs.fp8.overrides."3".model',
            "is a link to another node",
        ),
        (
            'workflow = "workflow_api.json"',
            'workflow = "missing.json"',
            "suite.workflow",
            "not found",
        ),
        ("seeds = [1, 2, 3]", "seeds = [1, -2]", "suite.seeds", "is not an integer"),
        ("seeds = [1, 2, 3]", "seeds = [1, 1]", "suite.seeds", "listed twice"),
        (
            'reference = "bf16"',
            'reference = "bf16"\ntolerence = 0.1',
            "suite.tolerence",
            "unknown key 'tolerence'",
        ),
        ('key = "cat"', 'key = "my-cat"', "prompts[0].key", "not usable in a test id"),
        (
            'name = "small"',
            'name = "small"\ntolerance = "big"',
            "suite.tolerance",
            "expected a number",
        ),
        (
            'text = "a photo of a cat on a red sofa"',
            "",
            "prompts[0]",
            "missing required key 'text'",
        ),
    ],
)
def test_bad_suite_gives_one_clear_error(
    tmp_path: Path, old: str, new: str, key: str | None, words: str
) -> None:
    path = _rewrite(write_small_suite(tmp_path), old, new)
    error = _error(path)
    message = str(error)
    assert str(path) in message
    if key:
        assert f"[{key}]" in message
    assert words in message
    assert "hint: " in message
    assert error.hint


def test_expected_fail_unknown_prompt(tmp_path: Path) -> None:
    path = write_small_suite(tmp_path, extra='[[expected_fail]]\nprompt = "dog"\nreason = "x"\n')
    assert "unknown prompt 'dog'" in str(_error(path))


def test_unreadable_and_ui_format_workflows(tmp_path: Path) -> None:
    path = write_small_suite(tmp_path)
    (tmp_path / "workflow_api.json").write_text("{not json", encoding="utf-8")
    assert "not valid JSON" in str(_error(path))
    (tmp_path / "workflow_api.json").write_text(
        json.dumps({"nodes": [], "links": []}), encoding="utf-8"
    )
    error = _error(path)
    assert "UI-format" in str(error)
    assert "Export (API)" in str(error)
    (tmp_path / "workflow_api.json").unlink()
    (tmp_path / "workflow_api.json").mkdir()
    assert "cannot read" in str(_error(path)) or "not found" in str(_error(path))


def test_suite_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "zimage_bad.toml"
    path.write_bytes(b"\xff\xfe[suite]")
    assert "not UTF-8" in str(_error(path))


def test_suite_hash_changes_with_the_workflow(tmp_path: Path) -> None:
    path = write_small_suite(tmp_path)
    first = load_suite(path).sha256
    _rewrite(tmp_path / "workflow_api.json", '"steps": 8', '"steps": 9')
    assert load_suite(path).sha256 != first
