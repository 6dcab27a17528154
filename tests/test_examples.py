"""The docs' examples are real tests: run tests/examples/ against the fake ComfyUI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO, copy_example_suite, write_small_suite
from tests.helpers.doubles import CONFTEST

EXAMPLES = Path(__file__).parent / "examples"


@pytest.mark.slow
def test_fixture_examples_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, zimage_fake_comfyui: FakeComfyUI
) -> None:
    suite = copy_example_suite(pytester.path)
    workflow = suite.parent / "z_image_turbo_t2i_api.json"
    graph = json.loads(workflow.read_text(encoding="utf-8"))
    graph["13"]["inputs"].update(width=64, height=64)
    workflow.write_text(json.dumps(graph), encoding="utf-8")
    shutil.copy(EXAMPLES / "quality_checks.py", pytester.path / "test_quality_checks.py")
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "test_quality_checks.py",
        f"--zimage-suite={suite}",
        f"--zimage-host={zimage_fake_comfyui.url}",
        "--zimage-prompts=text_render,anime",
        "--zimage-seeds=42",
        f"--zimage-report-dir={pytester.path / 'report'}",
        f"--zimage-cache-dir={pytester.path / 'cache'}",
    )
    # 2 prompts x 4 configs: the text check runs for text_render (4), the FP8 check for fp8scaled (2)
    result.assert_outcomes(passed=6, skipped=10)
    # The reference images the candidates are compared with were generated once each.
    assert zimage_fake_comfyui.generations == 8


@pytest.mark.slow
def test_fixture_errors_are_one_clear_message(pytester: pytest.Pytester) -> None:
    suite = write_small_suite(pytester.path)
    pytester.makepyfile(test_custom="def test_custom(zimage_result):\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        "test_custom.py",
        f"--zimage-suite={suite}",
        "--zimage-host=127.0.0.1:9",
        "-k",
        "cat-bf16-s1",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*cannot connect to ComfyUI at http://127.0.0.1:9*", "*hint: *"])
    assert "Traceback" not in result.stdout.str()
    assert "During handling" not in result.stdout.str()
