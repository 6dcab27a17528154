"""Collection end to end: suite files become items; Python tests parametrize over cases; no host skips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_zimage_quality.suite import load_suite
from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import (
    EXAMPLE_SUITE,
    MORE_PROMPTS,
    REPO,
    copy_example_suite,
    more_prompts,
    write_small_suite,
)
from tests.helpers.doubles import CONFTEST


def test_example_suite_collects_216_readable_ids_stage_by_stage(
    pytester: pytest.Pytester,
) -> None:
    suite = copy_example_suite(pytester.path)
    result = pytester.runpytest("-p", "no:randomly", "--collect-only", "-q", str(suite.parent))
    result.stdout.fnmatch_lines(
        [
            "example_suite/zimage_turbo.toml::photo_woman-bf16-s42",
            "example_suite/zimage_turbo.toml::photo_woman-nvfp4-s42",
            "example_suite/zimage_turbo.toml::chinese-nvfp4_fp8e-s12345",
            "example_suite/zimage_turbo.toml::photo_fisherman-bf16-s42",
            "example_suite/zimage_turbo.toml::abstract_ribbons-nvfp4_fp8e-s12345",
            "*216 tests collected*",
        ]
    )
    ids = [line.split("::")[1] for line in result.stdout.lines if "::" in line]
    configs = [case_id.split("-")[1] for case_id in ids]
    # stage by stage (72 cases each); within a stage grouped by config, reference first
    for stage in range(3):
        block = configs[72 * stage : 72 * (stage + 1)]
        assert block == sorted(block, key=["bf16", "fp8scaled", "nvfp4", "nvfp4_fp8e"].index)


def test_only_zimage_toml_files_are_suites(pytester: pytest.Pytester) -> None:
    write_small_suite(pytester.path, name="zimage_small.toml")
    write_small_suite(pytester.path, name="other.toml")
    (pytester.path / "pyproject.toml").write_text("[project]\nname='x'\n")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*27 tests collected*"])
    assert "other.toml" not in result.stdout.str()


def test_filters_select_cases(pytester: pytest.Pytester, small_suite: Path) -> None:
    result = pytester.runpytest(
        "-p",
        "no:randomly",
        "--collect-only",
        "-q",
        "--zimage-configs=fp8",
        "--zimage-prompts=ink,cat",
        "--zimage-seeds=7",
    )
    result.stdout.fnmatch_lines(
        ["*zimage_small.toml::cat-fp8-s7", "*zimage_small.toml::ink-fp8-s7", "*2 tests collected*"]
    )


def test_unknown_filter_key_is_a_clear_collection_error(
    pytester: pytest.Pytester, small_suite: Path
) -> None:
    result = pytester.runpytest("--zimage-configs=fp16")
    result.stdout.fnmatch_lines(["*ERROR collecting zimage_small.toml*", "*unknown config 'fp16'*"])
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_bad_suite_stops_collection_with_one_message(pytester: pytest.Pytester) -> None:
    path = write_small_suite(pytester.path)
    path.write_text(path.read_text().replace('reference = "bf16"', 'reference = "fp16"'))
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting zimage_small.toml*",
            "*zimage_small.toml [[]suite.reference[]]: reference config 'fp16' is not one of the configs*",
            "*hint: set reference to the key of a [[]configs.<key>[]] table*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "suite.py" not in result.stdout.str()


@pytest.mark.parametrize(
    ("old", "new", "words"),
    [
        (
            'key = "cat"',
            'key = "../cat"',
            "*[[]prompts[[]0[]].key[]]: prompt key '../cat' contains '..'*",
        ),
        (
            "[configs.fp8]",
            '[configs."fp\\u202e8"]',
            "*toml [[]configs.fp\\u202e8[]]: config key 'fp\\u202e8' contains the bidi-override*",
        ),
        (
            'name = "small"',
            "name = " + "[" * 50_000 + "]" * 50_000,
            "*nests arrays or tables too deeply*",
        ),
    ],
)
def test_unsafe_or_unreadable_suite_is_one_collection_message(
    pytester: pytest.Pytester, old: str, new: str, words: str
) -> None:
    path = write_small_suite(pytester.path)
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting zimage_small.toml*", words, "*hint: *"])
    assert "Traceback" not in result.stdout.str()
    assert "RecursionError" not in result.stdout.str()


def test_no_host_skips_every_case_with_one_reason(
    pytester: pytest.Pytester, small_suite: Path
) -> None:
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=27)
    result.stdout.fnmatch_lines(
        [
            "*zimage: no quality gate ran: no ComfyUI host given (--zimage-host)*",
            "SKIPPED [[]27[]] zimage_small.toml: no ComfyUI host given: pass --zimage-host=HOST:PORT*",
        ]
    )
    assert result.ret == pytest.ExitCode.OK


def test_expected_fail_marks_become_xfail_markers(pytester: pytest.Pytester) -> None:
    write_small_suite(
        pytester.path,
        extra='[[expected_fail]]\nprompt = "sign"\nconfig = "nvfp4"\nreason = "FP4 text"\nstrict = true\n',
    )
    pytester.makeconftest(
        """
        def pytest_collection_modifyitems(items):
            for item in items:
                mark = item.get_closest_marker("xfail")
                if mark:
                    print("XFAIL", item.name, mark.kwargs["reason"], mark.kwargs["strict"])
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--collect-only", "-q", "-s")
    result.stdout.fnmatch_lines(
        [
            "XFAIL sign-nvfp4-s1 FP4 text True",
            "XFAIL sign-nvfp4-s2 FP4 text True",
            "XFAIL sign-nvfp4-s3 FP4 text True",
        ]
    )
    assert result.stdout.str().count("XFAIL ") == 3


def test_python_tests_parametrize_over_the_suite(
    pytester: pytest.Pytester, small_suite: Path
) -> None:
    pytester.makepyfile(
        test_custom="""
        def test_case_shape(zimage_case):
            assert zimage_case.seed in (1, 2, 3)
            assert zimage_case.id.endswith(f"-s{zimage_case.seed}")
        """
    )
    result = pytester.runpytest(
        "-p", "no:randomly", f"--zimage-suite={small_suite}", "test_custom.py", "-v"
    )
    result.assert_outcomes(passed=27)
    result.stdout.fnmatch_lines(["*test_custom.py::test_case_shape[[]cat-bf16-s1[]] PASSED*"])


def test_python_test_without_suite_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_custom="def test_case(zimage_case):\n    pass\n")
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        ["*uses the zimage_case fixture but no suite is configured*", "*--zimage-suite*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_unrelated_tests_are_untouched(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert not (pytester.path / ".pytest_cache" / "d" / "zimage").exists()
    assert "zimage" not in result.stdout.str().replace("zimage-quality-", "")


@pytest.mark.slow
def test_no_host_line_also_under_xdist(pytester: pytest.Pytester, small_suite: Path) -> None:
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(skipped=27)
    result.stdout.fnmatch_lines(
        ["*zimage: no quality gate ran: no ComfyUI host given (--zimage-host)*"]
    )


def _example_stages() -> dict[str, int]:
    return {p.key: p.stage for p in load_suite(EXAMPLE_SUITE).prompts}


@pytest.mark.parametrize("seed", [1, 12345])
def test_stages_stay_in_order_under_pytest_randomly(pytester: pytest.Pytester, seed: int) -> None:
    # pytest-randomly shuffles every item; the plugin restores stage-major order for the zimage
    # items (else the stage hold releases every stage), keeping the shuffle within a stage.
    suite = copy_example_suite(pytester.path)
    pytester.makepyfile(test_plain="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest(
        f"--randomly-seed={seed}", "--collect-only", "-q", str(suite.parent), "test_plain.py"
    )
    lines = [line for line in result.stdout.lines if "::" in line]
    assert len(lines) == 218, result.stdout.str()
    ids = [line.split("::")[1] for line in lines if "zimage_turbo.toml" in line]
    stage_of = _example_stages()
    stages = [stage_of[case_id.split("-")[0]] for case_id in ids]
    assert stages == sorted(stages), "a later-stage case is ordered before an earlier one"
    configs = [case_id.split("-")[1] for case_id in ids[:72]]
    assert configs != sorted(configs), "pytest-randomly did not shuffle stage 1 (test is void)"
    plain = [line for line in lines if "test_plain.py" in line]
    assert len(plain) == 2


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 2026])
def test_the_stage_hold_saves_generations_under_pytest_randomly(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    zimage_fake_comfyui: FakeComfyUI,
    seed: int,
) -> None:
    # stage 1: 9 prompts decide both candidates; stage 2's 3 prompts are never generated, in
    # whatever order pytest-randomly shuffled the items.
    write_small_suite(
        pytester.path,
        extra=more_prompts(6) + more_prompts(3, start=6, stage=2),
    )
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    result = pytester.runpytest_subprocess(
        f"--randomly-seed={seed}",
        f"--zimage-host={zimage_fake_comfyui.url}",
        f"--zimage-report-dir={pytester.path / 'report'}",
        f"--zimage-cache-dir={pytester.path / 'cache'}",
        "--zimage-configs=bf16,fp8",
        "--zimage-seeds=1",
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=18, skipped=6)
    assert zimage_fake_comfyui.generations == 18


@pytest.mark.parametrize("option", ["--ff", "--nf"])
def test_failed_first_and_new_first_keep_the_stages_in_order(
    pytester: pytest.Pytester, option: str
) -> None:
    # --ff and --nf reorder after every plain hook; a stage-2 case that failed last time, or
    # that the suite just gained, must still wait for every stage-1 case (the stage hold).
    suite = write_small_suite(pytester.path, extra=more_prompts(3, stage=2))
    stage2 = {key for key, _ in MORE_PROMPTS[:3]}

    def collected(*args: str) -> list[str]:
        result = pytester.runpytest("-p", "no:randomly", "--collect-only", "-q", *args)
        return [line for line in result.stdout.lines if line.startswith(f"{suite.name}::")]

    ids = collected()
    stage_of = {i: 2 if i.split("::")[1].split("-")[0] in stage2 else 1 for i in ids}
    assert sorted(stage_of.values()) == [1] * 27 + [2] * 27
    cache = pytester.path / ".pytest_cache" / "v" / "cache"
    cache.mkdir(parents=True)
    last = next(i for i in reversed(ids) if stage_of[i] == 2)
    (cache / "lastfailed").write_text(json.dumps({last: True}), encoding="utf-8")
    (cache / "nodeids").write_text(
        json.dumps([i for i in ids if stage_of[i] == 1]), encoding="utf-8"
    )
    ordered = collected(option)
    assert sorted(ordered) == sorted(ids)
    stages = [stage_of[i] for i in ordered]
    assert stages == sorted(stages), ordered
    if option == "--ff":  # within its stage, the failed case still comes first
        assert ordered[27] == last


@pytest.mark.slow
def test_under_xdist_the_stages_hold_as_without_it(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    zimage_fake_comfyui: FakeComfyUI,
) -> None:
    # Under -n one worker runs every zimage case (xdist_group), so it holds stages as a run
    # without -n does: same outcomes, decisions and generations saved.
    write_small_suite(pytester.path, extra=more_prompts(6) + more_prompts(3, start=6, stage=2))
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))

    def run(*extra: str) -> tuple[pytest.RunResult, dict[str, Any]]:
        report = pytester.path / f"report{len(extra)}"
        result = pytester.runpytest_subprocess(
            "-p",
            "no:randomly",
            f"--zimage-host={zimage_fake_comfyui.url}",
            f"--zimage-report-dir={report}",
            f"--zimage-cache-dir={pytester.path / f'cache{len(extra)}'}",
            "--zimage-configs=bf16,fp8",
            "--zimage-seeds=1",
            *extra,
        )
        data = json.loads((report / "summary.json").read_text(encoding="utf-8"))
        (fp8,) = [c for c in data["suites"][0]["configs"] if c["key"] == "fp8"]
        return result, fp8

    held, held_fp8 = run()
    held.assert_outcomes(passed=18, skipped=6)
    spread, spread_fp8 = run("-n", "2")
    spread.assert_outcomes(passed=18, skipped=6)
    assert spread.ret == held.ret == pytest.ExitCode.OK
    for key in ("decision", "verdict"):
        assert spread_fp8[key] == held_fp8[key]
    assert spread_fp8["stages"]["decided_stage"] == held_fp8["stages"]["decided_stage"] == 1
    assert spread_fp8["stages"]["looks"] == held_fp8["stages"]["looks"]
    assert held_fp8["stages"]["generations_saved"] == 3
    assert spread_fp8["stages"]["generations_saved"] == 3
