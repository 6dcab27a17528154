"""The HTML report, from hand-built summaries and records (no pytest run, no browser)."""

from __future__ import annotations

import hashlib
import html
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from PIL import Image

from pytest_zimage_quality.artifacts import ReportDir
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.report.html import build_view, write_html_report
from pytest_zimage_quality.report.views import DASH, fmt, fmt_p, redact
from pytest_zimage_quality.report.vocabulary import (
    COLUMNS,
    HTML_COLUMNS,
    gate_headline,
    html_gate_headline,
)
from pytest_zimage_quality.summary import build_summary
from pytest_zimage_quality.thumbnails import THUMB_SIZE, make_thumbnail
from tests.helpers.html_reports import (
    ENVIRONMENT,
    HOSTILE,
    SETTINGS,
    STUDY_CONFIGS,
    STUDY_PROMPTS,
    DomCounter,
    make_records,
    make_summary,
    parse,
    png_bytes,
)


def render_run(
    tmp_path: Path, *, records: list[CaseRecord] | None = None, **summary_kw: Any
) -> tuple[ReportDir, Path, DomCounter]:
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report) if records is None else records
    path = write_html_report(report, make_summary(records, **summary_kw), records)
    return report, path, parse(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------


def test_writes_report_html_in_the_report_dir(tmp_path: Path) -> None:
    report, path, _ = render_run(tmp_path)
    assert path == report.html_path
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_headline_table_has_one_row_per_config(tmp_path: Path) -> None:
    _, _, dom = render_run(tmp_path)
    rows = dom.find("tr", "config-row")
    assert [r["data-config"] for r in rows] == ["bf16", "fp8scaled", "nvfp4", "nvfp4_fp8e"]


def test_headline_shows_the_study_numbers(tmp_path: Path) -> None:
    _, _, dom = render_run(tmp_path)
    text = dom.all_text
    assert "0.3344 ± " in text  # BF16 CLIPScore mean over 18 images
    # NVFP4+FP8e and its Δ (the study's 0.3388 and +0.0044 come from rounded per-prompt means)
    assert re.search(r"0\.338[78] ± ", text)
    assert re.search(r"\+0\.004[34]", text)
    assert "1.37×" in text  # its speedup


def test_per_prompt_table_has_one_row_per_prompt_and_a_cell_per_config(tmp_path: Path) -> None:
    _, path, dom = render_run(tmp_path)
    rows = dom.find("tr", "prompt-row")
    # without a suite file the summary lists prompts by key
    assert [r["data-prompt"] for r in rows] == sorted(p[0] for p in STUDY_PROMPTS)
    table = (
        path.read_text(encoding="utf-8").split('<table class="per-prompt">')[1].split("</table>")[0]
    )
    assert table.count("<td") == 6 * 4


def test_per_prompt_table_shows_the_study_breakdown(tmp_path: Path) -> None:
    _, _, dom = render_run(tmp_path)
    for value in ("0.3433", "0.2731", "0.4030", "0.3187"):
        assert value in dom.all_text


def test_grid_has_a_section_per_prompt_and_a_cell_per_case(tmp_path: Path) -> None:
    _, _, dom = render_run(tmp_path)
    assert len(dom.find("details", "prompt")) == 6
    assert len(dom.find("tr", "seed-row")) == 6 * 3
    assert len(dom.find("figure", "cell")) == 72
    assert len(dom.find("img")) == 72


def test_grid_columns_put_the_reference_first(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report)
    summary = make_summary(records)
    configs = summary.suites[0].configs
    summary = replace(
        summary, suites=(replace(summary.suites[0], configs=configs[1:] + configs[:1]),)
    )
    view = build_view(summary, records, report)
    assert [c.key for c in view.suites[0].columns] == ["bf16", "fp8scaled", "nvfp4", "nvfp4_fp8e"]
    assert view.suites[0].sections[0].rows[0].cells[0].is_reference


def test_images_are_lazy_thumbnails_linking_to_the_full_image(tmp_path: Path) -> None:
    report, _, dom = render_run(tmp_path)
    images = dom.find("img")
    assert all(img.get("loading") == "lazy" for img in images)
    assert all((img.get("src") or "").startswith("thumbs/") for img in images)
    links = dom.find("a", "full")
    assert len(links) == 72
    for link in links:
        href = link["href"] or ""
        assert href.startswith("images/")
        assert (report.root / href).is_file()


def test_paths_are_relative_and_the_report_dir_can_move(tmp_path: Path) -> None:
    report, path, _ = render_run(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert str(tmp_path) not in text
    moved = tmp_path / "elsewhere"
    report.root.rename(moved)
    dom = parse((moved / "report.html").read_text(encoding="utf-8"))
    for img in dom.find("img"):
        assert (moved / (img["src"] or "")).is_file()


def test_no_absolute_paths_outside_the_options_section(tmp_path: Path) -> None:
    _, path, _ = render_run(tmp_path)
    text = path.read_text(encoding="utf-8")
    before, options = text.split('<table class="facts options">')
    assert "/home/someone" not in before  # the suite's path is shown as its file name
    assert "/home/someone/zr" in options  # the user's own option values are data


def test_thumbnails_are_small_jpegs_made_once_per_content(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    big = png_bytes((10, 200, 30), size=700)
    records = make_records(report, image=lambda *_: big)
    write_html_report(report, make_summary(records), records)
    thumbs = list(report.thumbs_dir.iterdir())
    assert [t.name for t in thumbs] == [hashlib.sha256(big).hexdigest()[:16] + ".jpg"]
    with Image.open(thumbs[0]) as thumb:
        assert thumb.format == "JPEG"
        assert max(thumb.size) == THUMB_SIZE
    mtime = thumbs[0].stat().st_mtime_ns
    write_html_report(report, make_summary(records), records)
    assert thumbs[0].stat().st_mtime_ns == mtime


def test_make_thumbnail_of_an_unreadable_file_is_none(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert make_thumbnail(bad, tmp_path / "t.jpg") is None
    assert not (tmp_path / "t.jpg").exists()


def test_hostile_prompt_is_escaped_everywhere(tmp_path: Path) -> None:
    prompts = [("hostile", HOSTILE, ["<b>tag</b>"]), *STUDY_PROMPTS[:1]]
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report, prompts=prompts, suite="<i>suite</i>")
    summary = make_summary(records, prompts=prompts)
    server = replace(ENVIRONMENT.servers[0], comfyui_version="<script>alert(2)</script>")
    summary = replace(summary, environment=replace(ENVIRONMENT, servers=(server,)))
    path = write_html_report(report, summary, records)
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text
    assert "<img src=x" not in text
    assert "<i>suite</i>" not in text
    assert "&lt;script&gt;document.title=" in text
    dom = parse(text)
    assert HOSTILE in dom.all_text
    assert not dom.find("script")
    assert not dom.find("img", src="x")
    assert "PWNED" not in dom.title


def test_hostile_config_label_and_message_are_escaped(tmp_path: Path) -> None:
    configs = [("bf16", "BF16"), ("evil", '"><svg onload=alert(1)>')]
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report, configs=configs, prompts=STUDY_PROMPTS[:1])
    records[-1] = records[-1].with_(outcome="failed", message="<script>alert(3)</script>")
    path = write_html_report(report, make_summary(records), records)
    text = path.read_text(encoding="utf-8")
    assert "<svg onload" not in text
    assert "<script" not in text
    assert "onload=alert(1)" in html.unescape(text)


def test_failures_and_expected_failures_are_highlighted(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report)
    records[5] = records[5].with_(outcome="failed", message="CLIPScore 0.20 < 0.30 - 0.04")
    records[6] = records[6].with_(outcome="error", message="ComfyUI unreachable")
    records[7] = records[7].with_(outcome="xfailed", expected_fail="FP4 text rendering")
    records[8] = records[8].with_(outcome="xpassed", expected_fail="FP4 text rendering")
    path = write_html_report(report, make_summary(records), records)
    dom = parse(path.read_text(encoding="utf-8"))
    assert len(dom.find("figure", "failed")) == 2
    assert len(dom.find("figure", "expected")) == 2
    assert {f["data-outcome"] for f in dom.find("figure", "failed")} == {"failed", "error"}
    text = dom.all_text
    assert "FAILED" in text
    assert "XFAIL" in text
    assert "XPASS" in text
    assert "CLIPScore 0.20 < 0.30 - 0.04" in text
    assert "expected: FP4 text rendering" in text


@pytest.mark.slow
def test_sections_with_failures_stay_open_in_a_large_report(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    prompts: list[tuple[str, str, list[str]]] = [
        (f"p{i:02d}", f"prompt {i}", []) for i in range(25)
    ]
    records = make_records(report, prompts=prompts, seeds=range(10), image_size=4)
    records[0] = records[0].with_(outcome="failed")
    view = build_view(make_summary(records, prompts=prompts), records, report)
    assert [s.open for s in view.suites[0].sections[:2]] == [True, False]


def test_banners_are_shown_first_and_in_the_title(tmp_path: Path) -> None:
    banners = ["SIMULATED — a fake ComfyUI", "RANDOM WEIGHTS — NOT A QUALITY MEASUREMENT"]
    _, path, dom = render_run(tmp_path, banners=banners)
    assert [b["class"] for b in dom.find("p", "banner")] == ["banner", "banner"]
    text = path.read_text(encoding="utf-8")
    body = text.split("<body>")[1]
    assert body.lstrip().startswith(
        '<div class="banners">\n<p class="banner" role="alert">SIMULATED — a fake ComfyUI</p>'
    )
    assert dom.title.startswith("SIMULATED · RANDOM WEIGHTS · ")


def test_gate_verdict_and_reason(tmp_path: Path) -> None:
    _, _, dom = render_run(tmp_path, gate_passed=False)
    assert dom.find("section", "fail")
    assert "GATE FAILED" in dom.all_text
    assert "non-inferiority not shown for NVFP4" in dom.all_text


def test_environment_scorers_and_options(tmp_path: Path) -> None:
    _, _, dom = render_run(tmp_path)
    text = dom.all_text
    for expected in (
        "NVIDIA GB10",
        "0.3.64",
        "ViT-B-32",
        "laion2b_s34b_b79k",
        "alex",
        "Authorization",
    ):
        assert expected in text


def test_url_credentials_are_redacted(tmp_path: Path) -> None:
    assert redact("https://ci:s3cret@gpu.example:8188/x") == "https://ci:***@gpu.example:8188/x"
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report, prompts=STUDY_PROMPTS[:1])
    summary = make_summary(records)
    url = "https://ci:s3cret@gpu.example:8188"
    server = replace(ENVIRONMENT.servers[0], url=url)
    summary = replace(
        summary,
        options={**summary.options, "hosts": [url]},
        environment=replace(ENVIRONMENT, servers=(server,)),
    )
    text = write_html_report(report, summary, records).read_text(encoding="utf-8")
    assert "s3cret" not in text
    assert "t0ken" not in text


def test_charts_are_inline_svg_with_a_point_per_prompt_and_config(tmp_path: Path) -> None:
    _, path, dom = render_run(tmp_path)
    assert len(dom.find("svg")) == 2
    clip = path.read_text(encoding="utf-8").split('data-chart="clipscore"')[1].split("</figure>")[0]
    assert clip.count("<circle") == 6 * 4
    speed = path.read_text(encoding="utf-8").split('data-chart="lpips-speedup"')[1]
    speed = speed.split("</figure>")[0]
    assert speed.count("<circle") == 3  # candidates only
    # labelled with its decision
    assert re.search(r"NVFP4\+FP8e \((non-inferior|inconclusive|insufficient data)\)", speed)


def test_no_network_references(tmp_path: Path) -> None:
    _, path, dom = render_run(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text)
    assert not dom.find("script")
    assert not dom.find("link")
    assert "base64" not in text


def test_missing_data_renders_dashes(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report, prompts=STUDY_PROMPTS[:2])
    records = [
        r.with_(clipscore=None, lpips=None, delta=None, image_path="", outcome="error")
        if r.config == "nvfp4"
        else r
        for r in records
    ]
    summary = make_summary(records)
    nvfp4 = next(c for c in summary.suites[0].configs if c.key == "nvfp4")
    assert nvfp4.verdict == "no data"
    assert nvfp4.decision == "incomplete"
    assert nvfp4.clipscore is None
    assert nvfp4.gate is None
    path = write_html_report(report, summary, records)
    dom = parse(path.read_text(encoding="utf-8"))
    assert DASH in dom.all_text
    assert "INCOMPLETE" in dom.all_text
    assert len(dom.find("figure", "cell")) == 2 * 4 * 3
    assert len(dom.find("img")) == 2 * 3 * 3


def test_a_config_without_records_is_a_column_of_placeholders(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report, prompts=STUDY_PROMPTS[:1], suite="s")
    summary = make_summary(records)
    shown = [r for r in records if r.config != "nvfp4"]
    dom = parse(write_html_report(report, summary, shown).read_text(encoding="utf-8"))
    assert len(dom.find("figure", "cell")) == 12
    assert len(dom.find("figure", "missing")) == 3
    assert len(dom.find("img")) == 9


def test_records_whose_images_are_gone_still_render(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report, prompts=STUDY_PROMPTS[:1])
    for record in records[:3]:
        Path(record.image_path).unlink()
    path = write_html_report(report, make_summary(records), records)
    dom = parse(path.read_text(encoding="utf-8"))
    assert len(dom.find("img")) == 12 - 3
    assert "no thumbnail — open image" in dom.all_text


def test_no_records(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    path = write_html_report(report, make_summary([]), [])
    assert "GATE NO VERDICT" not in path.read_text(encoding="utf-8")  # make_summary forces a gate
    summary = build_summary(
        [], suites=(), settings=SETTINGS, environment=ENVIRONMENT, run_id="r", created="now"
    )
    path = write_html_report(report, summary, [])
    assert "GATE NO VERDICT" in path.read_text(encoding="utf-8")


def test_unicode_and_special_characters_in_image_paths_are_url_encoded(tmp_path: Path) -> None:
    prompts: list[tuple[str, str, list[str]]] = [("古風 #1?", "ink", [])]
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report, prompts=prompts, configs=STUDY_CONFIGS[:2])
    path = write_html_report(report, make_summary(records, prompts=prompts), records)
    for link in parse(path.read_text(encoding="utf-8")).find("a", "full"):
        href = link["href"] or ""
        assert "#" not in href
        assert "?" not in href
        assert (report.root / unquote(href)).is_file()


def test_formatting_helpers() -> None:
    assert fmt(-0.0123, signed=True) == "−0.0123"
    assert fmt(float("nan")) == DASH
    assert fmt(None) == DASH
    assert fmt(True) == DASH
    assert fmt_p(0.00001) == "<0.0001"
    assert fmt_p(0.04321) == "0.043"


@pytest.mark.slow
def test_a_thousand_cases_stay_light(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    prompts: list[tuple[str, str, list[str]]] = [
        (f"p{i:02d}", f"prompt number {i}", ["tag"]) for i in range(25)
    ]
    records = make_records(report, prompts=prompts, seeds=range(10), image_size=64)
    assert len(records) == 1000
    summary = make_summary(records, prompts=prompts)
    start = time.perf_counter()
    path = write_html_report(report, summary, records)
    elapsed = time.perf_counter() - start
    size = path.stat().st_size
    assert elapsed < 30, f"{elapsed:.1f} s to write a 1,000-case report"
    assert size < 2_500_000, f"report.html is {size} bytes"
    dom = parse(path.read_text(encoding="utf-8"))
    assert len(dom.find("figure", "cell")) == 1000
    assert all(img.get("loading") == "lazy" for img in dom.find("img"))
    assert not [d for d in dom.find("details", "prompt") if "open" in d]  # all collapsed
    assert len(list(report.thumbs_dir.iterdir())) == 1000


def test_messages_show_report_paths_relative(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report, prompts=STUDY_PROMPTS[:1])
    failed = records[4]
    records[4] = failed.with_(
        outcome="failed", message=f"CLIPScore too low\n  image:     {failed.image_path}"
    )
    path = write_html_report(report, make_summary(records), records)
    text = path.read_text(encoding="utf-8")
    assert str(tmp_path) not in text
    assert "image:     images/photo_woman/fp8scaled/s7777-" in text


def test_gate_not_applied_with_random_weights(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report)
    summary = make_summary(records, gate_passed=False)
    summary = replace(summary, exit=replace(summary.exit, gate_ran=True, gate_applied=False))
    dom = parse(write_html_report(report, summary, records).read_text(encoding="utf-8"))
    assert "GATE NOT APPLIED (random weights) — would have FAILED" in dom.all_text
    assert "GATE FAILED" not in dom.all_text


def test_no_gate_verdict_when_no_candidate_was_scored(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report)
    summary = make_summary(records)
    summary = replace(summary, exit=replace(summary.exit, gate_ran=False, gate_applied=False))
    dom = parse(write_html_report(report, summary, records).read_text(encoding="utf-8"))
    assert "GATE NO VERDICT" in dom.all_text
    assert "GATE PASSED" not in dom.all_text


def test_html_headline_columns_and_gate_words_come_from_the_vocabulary(tmp_path: Path) -> None:
    """report.html heads its headline table with the terminal's columns, in their order (plus
    its own speedup), and words its gate box as the terminal's closing line does."""
    assert [c.key for c in HTML_COLUMNS] == [*COLUMNS, "speedup"]
    report = ReportDir(tmp_path / "report", "run")
    records = make_records(report)
    summary = make_summary(records)
    page = write_html_report(report, summary, records).read_text(encoding="utf-8")
    assert "".join(f"<th>{c.title}</th>" for c in HTML_COLUMNS[:2]) in page
    headline, _ = html_gate_headline(summary.exit)
    assert headline == "GATE " + gate_headline(summary.exit)[0].removeprefix("zimage gate: ")
    assert f"<strong>{headline}</strong>" in page
