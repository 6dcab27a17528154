"""One bad image fails only its own case, in a whole plugin run (issue 12).

The fake server saves a wrong-size image for one candidate and a 1x1 image for another; both
are scored in batches with healthy images. Each bad image must fail its own case, with the
reason in the output, and every other case of the run must pass: the scoring batch is
rescored without it, and no reference or neighbour pays for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pytest_zimage_quality._fake.faults import RunInfo
from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO, write_small_suite
from tests.helpers.doubles import CONFTEST

pytestmark = pytest.mark.slow

CASES = 27  # write_small_suite: 3 prompts x 3 configs x 3 seeds
RUN_DEADLINE = 150.0


def _case(config: str, prompt: str, seed: int) -> Callable[[RunInfo], bool]:
    def matches(run: RunInfo) -> bool:
        return (
            seed in run.seeds
            and any(config in f for f in run.model_files)
            and any(prompt in t for t in run.prompt_texts)
        )

    return matches


def test_a_wrong_size_and_a_tiny_image_fail_only_their_own_cases(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    zimage_fake_comfyui_factory: Callable[..., FakeComfyUI],
) -> None:
    write_small_suite(pytester.path)
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    fake = zimage_fake_comfyui_factory(image_latency=0.02)
    fake.faults.wrong_image_size(48, 40, when=_case("fp8", "cat", 2))
    fake.faults.tiny_image(when=_case("nvfp4", "sign", 1))

    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        f"--zimage-host={fake.url}",
        f"--zimage-report-dir={pytester.path / 'report'}",
        "--zimage-advisory",  # three prompts are too few for a gate; the cases are the point
        "-rfE",
        timeout=RUN_DEADLINE,
    )
    text = result.stdout.str() + result.stderr.str()
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == CASES - 2, text[-4000:]
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 2, text[-4000:]
    assert result.ret != pytest.ExitCode.OK
    assert "Traceback" not in text

    lines = (pytester.path / "report" / "results.jsonl").read_text("utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    bad = {str(r["case_id"]) for r in rows if r.get("outcome") != "passed"}
    assert len(bad) == 2, bad
    assert any("fp8" in c and "cat" in c and "s2" in c for c in bad), bad
    assert any("nvfp4" in c and "sign" in c and "s1" in c for c in bad), bad
    assert sum(r.get("outcome") == "passed" for r in rows) == CASES - 2


def test_one_image_for_everything_is_named_in_summary_json_and_report_html(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    zimage_fake_comfyui_factory: Callable[..., FakeComfyUI],
) -> None:
    write_small_suite(pytester.path)
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    fake = zimage_fake_comfyui_factory(image_latency=0.02)
    fake.faults.same_image()

    result = pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        f"--zimage-host={fake.url}",
        f"--zimage-report-dir={pytester.path / 'report'}",
        "--zimage-advisory",
        timeout=RUN_DEADLINE,
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    summary = json.loads((pytester.path / "report" / "summary.json").read_text("utf-8"))
    assert "byte-identical" in summary["identical_images"]
    assert any(b.startswith("IDENTICAL IMAGES — ") for b in summary["banners"])
    html = (pytester.path / "report" / "report.html").read_text("utf-8")
    assert "IDENTICAL IMAGES — all " in html
