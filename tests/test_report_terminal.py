"""The terminal summary, rendered from records that reproduce the study's per-prompt table.

Golden files in tests/golden/; rewrite them with ``ZIMAGE_UPDATE_GOLDEN=1 pytest tests/test_report_terminal.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_zimage_quality.artifacts import ReportDir
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.report.terminal import (
    display_width,
    format_table,
    write_terminal_summary,
)
from pytest_zimage_quality.settings import HostSpec, Settings
from pytest_zimage_quality.summary import Environment, build_summary
from tests.helpers.summary_records import paired_record
from tests.helpers.terminal import Terminal

GOLDEN = Path(__file__).parent / "golden"

# The study's per-prompt mean CLIPScore (BF16, FP8scaled, NVFP4, NVFP4+FP8e).
STUDY = {
    "photo_woman": (0.3403, 0.3404, 0.3383, 0.3426),
    "photo_machine": (0.3273, 0.3354, 0.3292, 0.3433),
    "anime": (0.3187, 0.3173, 0.3130, 0.3174),
    "text_render": (0.3628, 0.3656, 0.3642, 0.3623),
    "古風水墨": (0.2642, 0.2626, 0.2658, 0.2731),
    "abstract": (0.3932, 0.3926, 0.4030, 0.3938),
}
CONFIGS = [
    ("bf16", "BF16"),
    ("fp8scaled", "FP8scaled"),
    ("nvfp4", "NVFP4"),
    ("nvfp4_fp8e", "NVFP4+FP8e"),
]
LPIPS = {"fp8scaled": 0.167, "nvfp4": 0.289, "nvfp4_fp8e": 0.307}
SECONDS = {"bf16": 7.55, "fp8scaled": 8.1, "nvfp4": 5.50, "nvfp4_fp8e": 5.52}
SEED_OFFSETS = {42: -0.01, 7777: 0.004, 12345: 0.006}  # mean zero: cell means stay the study's


def study_records() -> list[CaseRecord]:
    records = []
    for prompt, means in STUDY.items():
        for seed, offset in SEED_OFFSETS.items():
            ref = means[0] + offset
            for (key, label), mean in zip(CONFIGS, means, strict=True):
                is_ref = key == "bf16"
                records.append(
                    paired_record(
                        suite="zimage-turbo-quant",
                        prompt=prompt,
                        config=key,
                        seed=seed,
                        score=mean + offset,
                        ref=ref,
                        label=label,
                        prompt_text=prompt,
                        lpips=None if is_ref else LPIPS[key] + offset,
                        tolerance=None if is_ref else 0.04,
                        server_seconds=SECONDS[key] + abs(offset),
                    )
                )
    return records


#: What the session would gather about the run's environment (nothing: no server was asked).
ENVIRONMENT = Environment(
    plugin_version="0.1.0", python="3.12", platform="Linux", pytest="8", torch=None, device="cpu"
)


def render(
    verbosity: int, tmp_path: Path, *, drop: float = 0.0, stopped_early: str = "", **settings: Any
) -> str:
    """The summary as the terminal shows it; ``drop`` lowers every NVFP4 score."""
    records = [
        r.with_(clipscore=(r.clipscore or 0.0) - drop, delta=(r.delta or 0.0) - drop)
        if r.config == "nvfp4"
        else r
        for r in study_records()
    ]
    summary = build_summary(
        records,
        suites=(),
        settings=Settings(hosts=(HostSpec("http://gb10:8188"),), **settings),
        environment=ENVIRONMENT,
        run_id="golden",
        stopped_early=stopped_early,
    )
    terminal = Terminal()
    write_terminal_summary(
        terminal,
        summary,
        verbosity=verbosity,
        records=records,
        html_path=ReportDir(Path("report"), "golden").html_path,
        has_host=True,
        any_zimage_items=True,
    )
    return "\n".join(terminal.lines) + "\n"


@pytest.mark.parametrize(("name", "verbosity"), [("default", 0), ("quiet", -1), ("verbose", 1)])
def test_summary_matches_golden(name: str, verbosity: int, tmp_path: Path) -> None:
    text = render(verbosity, tmp_path)
    golden = GOLDEN / f"summary_{name}.txt"
    if os.environ.get("ZIMAGE_UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_headline_reproduces_the_studys_means(tmp_path: Path) -> None:
    text = render(0, tmp_path)
    # The study's headline (to its rounding: the per-prompt means average to 0.33565 for FP8scaled).
    for label, mean in (
        ("BF16", 0.3344),
        ("FP8scaled", 0.3356),
        ("NVFP4", 0.3356),
        ("NVFP4+FP8e", 0.3388),
    ):
        row = next(line for line in text.splitlines() if line.startswith(label + " "))
        shown = float(row.split()[5] if label != "BF16" else row.split()[3])
        assert abs(shown - mean) <= 0.0001, (label, shown)


def test_cjk_keys_align() -> None:
    lines = format_table(["prompt", "BF16"], [["古風水墨", "0.2642"], ["anime", "0.3187"]], "<>")
    assert len({display_width(line) for line in lines}) == 1
    assert display_width("古風") == 4


def test_quiet_is_one_line_per_candidate(tmp_path: Path) -> None:
    lines = [
        line
        for line in render(-1, tmp_path).splitlines()
        if line.startswith("zimage zimage-turbo-quant:")
    ]
    assert [line.split(":")[1].split()[0] for line in lines] == ["FP8scaled", "NVFP4", "NVFP4+FP8e"]


def test_a_failing_config_is_red_and_fails_the_gate(tmp_path: Path) -> None:
    text = render(0, tmp_path, drop=0.02)
    assert "zimage gate: FAILED" in text
    assert any(line.startswith("NVFP4 ") and "<red>" in line for line in text.splitlines())


def test_the_vocabulary_prints_every_decision_as_stats_names_it() -> None:
    from pytest_zimage_quality import stats
    from pytest_zimage_quality.report.vocabulary import verdict_label

    for decision, label in stats.DECISION_LABELS.items():
        assert verdict_label(decision) == label


def test_the_legend_defines_power_as_planned_and_never_grading(tmp_path: Path) -> None:
    text = render(0, tmp_path)
    assert "chance to PASS" not in text
    assert "INCONCLUSIVE, not 'no regression'" not in text
    assert "--zimage-inconclusive" not in text
    assert "power (planned): chance of NON-INFERIOR when the config has no true drop" in text
    assert "pseudo-median" in text
    assert "observed MDD" in text


def test_a_run_stopped_early_never_says_passed(tmp_path: Path) -> None:
    text = render(0, tmp_path, stopped_early="stopping after 1 failures")
    assert "PASSED" not in text
    rows = [
        line
        for line in text.splitlines()
        if line.startswith(("FP8scaled ", "NVFP4")) and "±" in line
    ]
    assert len(rows) == 3
    assert all("INCOMPLETE" in row and "NON-INFERIOR" not in row for row in rows)
    assert "zimage gate: INCOMPLETE — the run stopped early (stopping after 1 failures)" in text


def test_advisory_says_so_and_what_the_gate_would_have_done(tmp_path: Path) -> None:
    text = render(0, tmp_path, drop=0.02, advisory=True)
    assert text.count("ADVISORY") >= 2  # the banner and the closing line
    assert "zimage gate: ADVISORY — would have FAILED (non-inferiority not shown for NVFP4" in text
    assert "the gate does not set the exit status" in text
