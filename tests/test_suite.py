"""The suite file: the example suite reproduces the study; every bad input is one clear SuiteError."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_zimage_quality import SuiteError, load_suite
from pytest_zimage_quality.workflow import MAX_NESTING, InputRef
from tests.helpers import EXAMPLE_SUITE, more_prompts, write_small_suite

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
    assert {p.key: p.text for p in suite.prompts if p.stage == 1} == STUDY_PROMPTS
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
    assert len(cases) == 216
    assert len({c.id for c in cases}) == 216
    assert cases[0].id == "photo_woman-bf16-s42"
    assert "photo_woman-nvfp4-s42" in {c.id for c in cases}
    # Stage by stage; within a stage each config's cases are together, the reference first.
    for stage in (1, 2, 3):
        blocks = [c.config.key for c in cases if c.prompt.stage == stage]
        assert len(blocks) == 72
        assert blocks == sorted(blocks, key=["bf16", "fp8scaled", "nvfp4", "nvfp4_fp8e"].index)


def test_example_suite_stages_reach_80_percent_power_along_the_studys_angles() -> None:
    from pytest_zimage_quality import stats

    suite = load_suite(EXAMPLE_SUITE)
    assert suite.stages == (1, 2, 3)
    by_stage = {s: [p for p in suite.prompts if p.stage == s] for s in suite.stages}
    assert [len(prompts) for prompts in by_stage.values()] == [6, 6, 6]
    angles = [
        {tag for p in prompts for tag in p.tags} - {"easy", "fp4-stress"}
        for prompts in by_stage.values()
    ]
    assert angles[0] == angles[1] == angles[2]  # one prompt per stress angle in every stage
    plan = stats.plan_power(stats.DEFAULT_PRIOR, 18, 3, margin=0.01, alpha=0.05)
    assert plan.power >= 0.8


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


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("..", "contains '..'"),
        ("cat..s", "contains '..'"),
        ("a/b", "contains '/'"),
        ("a\\\\b", "contains '\\\\'"),
        ("a\\u0000b", "contains the control character '\\x00'"),
        ("a\\u001b[31mb", "contains the control character '\\x1b'"),
        ("a\\u202eb", "contains the bidi-override character '\\u202e'"),
        ("a\\u2066b", "contains the bidi-override character '\\u2066'"),
        ("a\\tb", "contains the space '\\t'"),
    ],
)
def test_keys_must_be_safe_path_and_id_components(tmp_path: Path, key: str, problem: str) -> None:
    prompt = _rewrite(write_small_suite(tmp_path), 'key = "cat"', f'key = "{key}"')
    message = str(_error(prompt))
    assert str(prompt) in message
    assert "[prompts[0].key]: prompt key" in message
    assert problem in message
    assert "without '..', spaces, control or bidi-override characters" in message
    assert all(line.isprintable() for line in message.splitlines())  # the key is escaped

    config = _rewrite(write_small_suite(tmp_path), "[configs.fp8]", f'[configs."{key}"]')
    message = str(_error(config))
    assert "config key" in message
    assert problem in message
    assert all(line.isprintable() for line in message.splitlines())


def test_pathologically_nested_suite_is_one_error(tmp_path: Path) -> None:
    path = write_small_suite(tmp_path, suite_extra="description = " + "[" * 100_000 + "]" * 100_000)
    error = _error(path)
    assert "nests arrays or tables too deeply" in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_workflow_that_is_not_utf8(tmp_path: Path) -> None:
    path = write_small_suite(tmp_path)
    (tmp_path / "workflow_api.json").write_bytes(b'{"3": {"class_type": "\xff"}}')
    message = str(_error(path))
    assert "workflow_api.json" in message
    assert "not UTF-8" in message


def test_pathologically_nested_workflow_is_one_error(tmp_path: Path) -> None:
    path = write_small_suite(tmp_path)
    (tmp_path / "workflow_api.json").write_text("[" * 100_000 + "]" * 100_000)
    assert "nested too deeply to read" in str(_error(path))


def test_deeply_nested_input_value_is_refused(tmp_path: Path) -> None:
    path = write_small_suite(tmp_path)
    graph = json.loads((tmp_path / "workflow_api.json").read_text(encoding="utf-8"))
    value: object = 1
    for _ in range(MAX_NESTING + 1):
        value = [value]
    graph["3"]["inputs"]["extra"] = value
    (tmp_path / "workflow_api.json").write_text(json.dumps(graph), encoding="utf-8")
    message = str(_error(path))
    assert f"input 'extra' of node '3' is nested more than {MAX_NESTING} levels deep" in message
    graph["3"]["inputs"]["extra"] = value[0]  # type: ignore[index]
    (tmp_path / "workflow_api.json").write_text(json.dumps(graph), encoding="utf-8")
    assert load_suite(path).workflow.value(InputRef("3", "extra")) == value[0]  # type: ignore[index]


def test_stages_order_the_cases_stage_by_stage(tmp_path: Path) -> None:
    suite = load_suite(write_small_suite(tmp_path, extra=more_prompts(2, stage=2)))
    assert suite.stages == (1, 2)
    assert [p.stage for p in suite.prompts] == [1, 1, 1, 2, 2]
    cases = suite.cases(seeds=[1])
    # stage 1 for every config (reference first), then stage 2 for every config
    assert [c.id for c in cases[:9]][:3] == ["cat-bf16-s1", "ink-bf16-s1", "sign-bf16-s1"]
    assert [c.prompt.stage for c in cases] == [1] * 9 + [2] * 6
    assert [c.id for c in cases[9:11]] == ["dog-bf16-s1", "clock-bf16-s1"]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (more_prompts(1, stage=0), "expected a whole number from 1 to 10, got int 0"),
        (more_prompts(1, stage=3), "stage 2 has no prompt"),
        ("[[prompts]]\nkey = 'x'\ntext = 'y'\nstage = '2'\n", "got string '2'"),
    ],
)
def test_bad_stages_are_one_clear_error(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(SuiteError, match=words):
        load_suite(write_small_suite(tmp_path, extra=extra))


def test_suite_prior_is_read_and_checked(tmp_path: Path) -> None:
    path = write_small_suite(
        tmp_path, suite_extra="prior = { sd_between = 0.004, sd_within = 0.02 }"
    )
    assert load_suite(path).prior == (0.004, 0.02)
    assert load_suite(write_small_suite(tmp_path)).prior is None
    for bad, words in (
        ("prior = { sd_between = 0.0, sd_within = 0.0 }", "no spread at all"),
        ("prior = { sd_between = 0.01 }", "missing required key 'sd_within'"),
        ("prior = { sd_between = 0.01, sd_within = 0.01, sd = 1 }", "unknown key 'sd'"),
    ):
        with pytest.raises(SuiteError, match=words):
            load_suite(write_small_suite(tmp_path, suite_extra=bad))
