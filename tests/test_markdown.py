"""The Markdown PR summary: structure, stamps, folding at 100 prompts, hostile prompt text, the
baseline section; rendered by a CommonMark+GFM-tables parser (markdown-it-py, the rules
GitHub follows) and by headless Chromium when one is on PATH."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pytest_zimage_quality.artifacts import ReportDir
from pytest_zimage_quality.baseline import compare, load_baseline
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.report.markdown import (
    STEP_SUMMARY_ENV,
    append_step_summary,
    render_markdown,
    write_markdown,
)
from pytest_zimage_quality.summary import RANDOM_BANNER, SIMULATED_BANNER, RunSummary
from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO, more_prompts, write_small_suite
from tests.helpers.browser import chromium, dump_dom  # noqa: F401 - the fixture
from tests.helpers.doubles import CONFTEST
from tests.helpers.html_reports import HOSTILE, DomCounter, make_records, make_summary, parse

ADVISORY = "ADVISORY — the gate is shown, not enforced"


def to_html(markdown: str) -> DomCounter:
    """GitHub's rules: CommonMark (an HTML block ends at a blank line) with GFM tables."""
    return parse(MarkdownIt("commonmark").enable("table").render(markdown))


def run(tmp_path: Path, **kw: object) -> tuple[RunSummary, list[CaseRecord]]:
    records = make_records(ReportDir(tmp_path / "report", "run"), **kw)  # type: ignore[arg-type]
    return make_summary(records), records


def many_prompts(n: int) -> tuple[tuple[str, str, list[str]], ...]:
    return tuple((f"p{i:03d}", f"prompt number {i}", ["bulk"]) for i in range(n))


def test_the_headline_table_has_a_row_per_config_with_verdict_bound_and_power(
    tmp_path: Path,
) -> None:
    summary, records = run(tmp_path)
    text = render_markdown(summary, records=records)
    assert text.startswith("## ✅ zimage gate: PASSED\n")
    dom = to_html(text)
    tables = dom.find("table")
    assert len(tables) >= 3  # headline, per prompt, worst cases (+ provenance)
    assert "| config | n | LPIPS vs BF16 | CLIPScore | Δ mean | lower bound |" in text
    suite = summary.suites[0]
    for config in suite.configs:
        assert f"| {config.label} | {config.n_scored} |" in text
        if config.gate is not None:
            assert f"{config.gate.lower_bound:+.4f}" in text
            assert f"{config.gate.power:.2f}" in text
    assert f"margin δ = {suite.margin:g}" in text
    assert "Legend" in text
    assert "lane (hardware class)" in text  # hardware classes and provenance
    assert "NVIDIA GB10 · ComfyUI 0.3.64 · torch 2.8.0" in text


def test_worst_cases_come_first_by_their_drop(tmp_path: Path) -> None:
    summary, records = run(tmp_path)
    text = render_markdown(summary, records=records)
    worst = min((r for r in records if r.delta is not None), key=lambda r: r.delta or 0.0)
    section = text.split("Worst 10 of 54 candidate cases")[1]
    first_row = section.split("\n")[4]
    assert first_row.startswith(f"| {worst.case_id} | {worst.config_label} | {worst.delta:+.4f}")


def test_stamps_are_the_summarys_banners(tmp_path: Path) -> None:
    records = make_records(ReportDir(tmp_path / "r", "run"))
    summary = make_summary(records, banners=(SIMULATED_BANNER, RANDOM_BANNER, ADVISORY))
    text = render_markdown(summary, records=records)
    for banner in (SIMULATED_BANNER, RANDOM_BANNER, ADVISORY):
        assert f"> **{banner}**" in text
    quotes = to_html(text).find("blockquote")
    assert len(quotes) == 3


def test_a_failed_gate_says_so_first(tmp_path: Path) -> None:
    records = make_records(ReportDir(tmp_path / "r", "run"))
    text = render_markdown(make_summary(records, gate_passed=False), records=records)
    assert text.startswith("## ❌ zimage gate: FAILED — non-inferiority not shown for NVFP4")


@pytest.mark.slow
def test_100_prompts_fold_into_details_and_stay_short(tmp_path: Path) -> None:
    prompts = many_prompts(100)
    records = make_records(ReportDir(tmp_path / "r", "run"), prompts=prompts)
    summary = make_summary(records, prompts=prompts)
    text = render_markdown(summary, records=records)
    dom = to_html(text)
    summaries = [t for t in text.splitlines() if t.startswith("<details><summary>")]
    assert "<details><summary>Per prompt (100 rows)</summary>" in summaries
    # the per-prompt table is inside <details> and still renders as a table (blank lines kept)
    folded = text.split("<details><summary>Per prompt (100 rows)</summary>")[1].split("</details>")[
        0
    ]
    assert folded.count("\n| p0") == 100
    rows = [t for t in dom.tags if t[0] == "tr"]
    assert len(rows) > 100  # the folded table was parsed as a table, not as raw text
    assert len(text.encode()) < 64 * 1024  # GitHub's job summary limit is 1 MiB per step
    small = render_markdown(make_summary(records[:0] or records, prompts=prompts), fold=1000)
    assert "<details><summary>Per prompt" not in small


def test_hostile_prompt_text_stays_text(tmp_path: Path) -> None:
    prompts = (("hostile", HOSTILE, ["x"]), ("pipe", "a | b | c", ["x"]))
    records = make_records(ReportDir(tmp_path / "r", "run"), prompts=prompts)
    text = render_markdown(make_summary(records, prompts=prompts), records=records)
    dom = to_html(text)
    assert not dom.find("script")
    assert not dom.find("img")
    assert HOSTILE in dom.all_text
    assert "a | b | c" in dom.all_text  # a pipe in a prompt does not split its row


def test_the_baseline_section_labels_new_failures(tmp_path: Path) -> None:
    summary, records = run(tmp_path)
    baseline_data = summary.to_dict()
    for config in baseline_data["suites"][0]["configs"]:
        if config["key"] == "nvfp4":
            config["decision"], config["verdict"] = "non-inferior", "pass"
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "summary.json").write_text(json.dumps(baseline_data))
    rows = [{"suite": r.suite, "case_id": r.case_id, "outcome": "passed"} for r in records]
    (tmp_path / "base" / "results.jsonl").write_text("\n".join(map(json.dumps, rows)))
    now = summary.to_dict()
    for config in now["suites"][0]["configs"]:
        if config["key"] == "nvfp4":
            config["decision"], config["verdict"] = "inferior", "fail"
    failing = records[10]
    current = [{"suite": failing.suite, "case_id": failing.case_id, "outcome": "failed"}]
    comparison = compare(load_baseline(tmp_path / "base"), now, current)
    nvfp4 = next(c for c in summary.suites[0].configs if c.key == "nvfp4")
    failed_summary = replace(
        summary,
        suites=(
            replace(
                summary.suites[0],
                configs=tuple(
                    replace(c, verdict="fail", decision="inferior") if c is nvfp4 else c
                    for c in summary.suites[0].configs
                ),
            ),
        ),
    )
    text = render_markdown(failed_summary, records=records, comparison=comparison)
    assert "Failures against the baseline: **2 new**, 0 inherited, 0 without a baseline." in text
    assert "| NVFP4 | non-inferior → inferior |" in text
    assert f"| {failing.case_id} | passed | new |" in text
    assert "Since baseline `20250101-120000-abcdef`" in text


def test_written_to_a_path_and_appended_to_the_github_step_summary(tmp_path: Path) -> None:
    target = tmp_path / "out" / "summary.md"
    write_markdown(target, "# one\n")
    assert target.read_text() == "# one\n"
    step = tmp_path / "step.md"
    step.write_text("earlier step\n")
    assert append_step_summary("# gate\n", {STEP_SUMMARY_ENV: str(step)}) == step
    assert step.read_text() == "earlier step\n\n# gate\n"
    assert append_step_summary("# gate\n", {}) is None


@pytest.mark.slow
def test_chromium_renders_the_summary(chromium: str, tmp_path: Path) -> None:  # noqa: F811
    prompts = (("hostile", HOSTILE, ["x"]), *many_prompts(30))
    records = make_records(ReportDir(tmp_path / "r", "run"), prompts=prompts)
    text = render_markdown(
        make_summary(records, prompts=prompts, banners=(SIMULATED_BANNER,)), records=records
    )
    page = tmp_path / "summary.html"
    body = MarkdownIt("commonmark").enable("table").render(text)
    page.write_text(f"<!DOCTYPE html><html><head><title>md</title></head><body>{body}</body>")
    dom = dump_dom(chromium, page, tmp_path)
    assert dom.title == "md"  # the hostile prompt's script did not run
    assert not dom.find("script")
    assert len(dom.find("details")) >= 2  # per prompt (31 rows) and the legend
    assert len([t for t in dom.tags if t[0] == "tr"]) > 31
    assert SIMULATED_BANNER in dom.all_text


@pytest.mark.parametrize("fold", [0, 20])
def test_every_table_has_its_separator_row(tmp_path: Path, fold: int) -> None:
    summary, records = run(tmp_path)
    lines = render_markdown(summary, records=records, fold=fold).splitlines()
    for index, line in enumerate(lines):
        if line.startswith("| ") and (index == 0 or not lines[index - 1].startswith("|")):
            header_cells = line.count(" | ")
            assert lines[index + 1].startswith("| ---")
            assert lines[index + 1].count(" | ") == header_cells


@pytest.mark.slow
def test_a_run_writes_the_markdown_and_appends_the_step_summary(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, zimage_fake_comfyui: FakeComfyUI
) -> None:
    write_small_suite(pytester.path, extra=more_prompts(3))  # six prompts: a verdict needs five
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the inner conftest imports tests.doubles
    step = pytester.path / "step_summary.md"
    step.write_text("## an earlier step\n")
    monkeypatch.setenv(STEP_SUMMARY_ENV, str(step))
    target = pytester.path / "out" / "summary.md"
    args = (
        "-p",
        "no:randomly",
        f"--zimage-host={zimage_fake_comfyui.url}",
        f"--zimage-report-dir={pytester.path / 'report'}",
        f"--zimage-cache-dir={pytester.path / 'cache'}",
    )
    result = pytester.runpytest_subprocess(*args, f"--zimage-markdown={target}")
    result.assert_outcomes(passed=54)
    text = target.read_text(encoding="utf-8")
    assert text.startswith("## ✅ zimage gate: PASSED")
    assert "| FP8 | 18 |" in text
    assert step.read_text(encoding="utf-8") == "## an earlier step\n\n" + text
    # turned off: the step summary is left alone, the named file is still written
    target.unlink()
    result = pytester.runpytest_subprocess(
        *args, f"--zimage-markdown={target}", "--zimage-step-summary=no"
    )
    result.assert_outcomes(passed=54)
    assert target.is_file()
    assert step.read_text(encoding="utf-8") == "## an earlier step\n\n" + text
