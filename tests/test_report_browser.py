"""report.html in a real browser: headless Chromium renders it, and we read back its DOM.

No Python browser driver: ``chromium --headless --dump-dom`` prints the DOM after the page has
loaded and any script has run, so a script that executed shows in what comes back (the
positive control below proves that on this machine). Skipped, with the reason, when no
Chromium is on PATH; ``.ci/run`` installs Debian's ``chromium`` so CI runs them.

``ZIMAGE_UPDATE_SCREENSHOT=1`` rewrites docs/images/report-example.png from a simulated run of
the example suite (a few minutes: random-weight scorers on the CPU).
"""

# The chromium fixture comes from tests/helpers/browser.py, so its parameters shadow the import.
# ruff: noqa: F811

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pytest_zimage_quality.artifacts import ReportDir
from pytest_zimage_quality.report.html import write_html_report
from tests.helpers import REPO, copy_example_suite, write_small_suite
from tests.helpers.browser import (  # noqa: F401 - chromium is a fixture
    WINDOW,
    chromium,
    dump_dom,
    find_chromium,
    run_chromium,
    screenshot,
)
from tests.helpers.html_reports import (
    HOSTILE,
    STUDY_PROMPTS,
    DomCounter,
    make_records,
    make_summary,
    png_bytes,
)

SCREENSHOT = REPO / "docs" / "images" / "report-example.png"
DOCS_WINDOW = (1400, 3000)
HOSTILE_SUITE_PROMPT = f'''
[[prompts]]
key = "hostile"
text = "{HOSTILE}"
'''


#: Charts every suite with scores has: CLIPScore per config, and LPIPS against speedup.
BASE_CHARTS = 2
#: Metrics those two charts already show (every further metric gets a chart of its own).
BASE_CHART_METRICS = frozenset({"clipscore", "lpips"})


def expected_chart_count(summary: dict[str, Any]) -> int:
    """The SVG charts report.html should hold, read from summary.json: per suite the two base
    charts plus one per further metric of the run that has a value in some config."""
    further = [m["name"] for m in summary["metrics"] if m["name"] not in BASE_CHART_METRICS]
    assert summary["suites"], "summary.json has no suite"
    count = 0
    for suite in summary["suites"]:
        measured = {
            name
            for config in suite["configs"]
            for name, column in config["metrics"].items()
            if column["mean"] is not None
        }
        count += BASE_CHARTS + sum(1 for name in further if name in measured)
    return count


def assert_hostile_prompt_is_inert(dom: DomCounter) -> None:
    assert "PWNED" not in dom.title, "the hostile prompt's script ran"
    assert not dom.find("script"), "a <script> element reached the DOM"
    assert not dom.find("img", src="x"), "the hostile prompt's <img> reached the DOM"
    assert HOSTILE in dom.all_text, "the hostile prompt is not shown as text"


# ---------------------------------------------------------------------------------------------


def test_dump_dom_shows_a_script_that_ran(chromium: str, tmp_path: Path) -> None:
    """Positive control: an unescaped script does change the DOM that --dump-dom prints."""
    page = tmp_path / "control.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>before</title></head><body>"
        "<script>document.title='PWNED'</script></body></html>",
        encoding="utf-8",
    )
    assert dump_dom(chromium, page, tmp_path).title == "PWNED"


def test_hand_built_report_has_the_tables_and_the_grid(chromium: str, tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run")
    prompts = [*STUDY_PROMPTS, ("hostile", HOSTILE, ["<b>x</b>"])]
    records = make_records(report, prompts=prompts[:3] + prompts[-1:])
    records[2] = records[2].with_(outcome="failed", message="<script>alert(2)</script>")
    records[3] = records[3].with_(outcome="xfailed", expected_fail="known")
    summary = make_summary(records, prompts=prompts, banners=["SIMULATED — test"])
    page = write_html_report(report, summary, records)

    dom = dump_dom(chromium, page, tmp_path)

    assert len(dom.find("p", "banner")) == 1
    assert len(dom.find("tr", "config-row")) == 4
    assert len(dom.find("tr", "prompt-row")) == 4
    assert len(dom.find("details", "prompt")) == 4
    assert len(dom.find("tr", "seed-row")) == 4 * 3
    assert len(dom.find("figure", "cell")) == 4 * 4 * 3
    assert len(dom.find("figure", "failed")) == 1
    assert len(dom.find("figure", "expected")) == 1
    images = dom.find("img")
    assert len(images) == 48
    assert {img.get("loading") for img in images} == {"lazy"}
    assert len(dom.find("svg")) == 2
    assert_hostile_prompt_is_inert(dom)


def test_thumbnails_load_from_relative_paths(chromium: str, tmp_path: Path) -> None:
    """Pure-green images must show up in the screenshot (nothing else on the page is green)."""
    report = ReportDir(tmp_path / "report", "run")
    pure_green = png_bytes((0, 255, 0), size=300)
    records = make_records(report, prompts=STUDY_PROMPTS[:1], image=lambda *_: pure_green)
    moved = tmp_path / "moved"
    write_html_report(report, make_summary(records), records)
    report.root.rename(moved)  # relative links survive a move, as a CI artifact would

    shot = screenshot(chromium, moved / "report.html", tmp_path / "shot.png", tmp_path)

    with Image.open(shot) as image:
        assert image.size == WINDOW
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    green_pixels = int(np.count_nonzero((green > 230) & (red < 40) & (blue < 40)))
    assert green_pixels > 12 * 120 * 120, f"only {green_pixels} green pixels: thumbnails missing"


@pytest.mark.slow
def test_simulated_run_report_in_chromium(
    chromium: str, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A small simulated suite with a hostile prompt, run through the plugin, then opened."""
    write_small_suite(pytester.path, extra=HOSTILE_SUITE_PROMPT)
    report_dir = pytester.path / "zreport"
    result = pytester.runpytest(
        "-p",
        "no:randomly",
        "--zimage-host=simulated",
        "--zimage-weights=random",
        f"--zimage-report-dir={report_dir}",
    )
    summary = json.loads((report_dir / "summary.json").read_text(encoding="utf-8"))
    lines = (report_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    results = [json.loads(line) for line in lines]
    assert len(results) == 4 * 3 * 3, result.stdout.str()[-3000:]
    failed = sum(1 for r in results if r["outcome"] in ("failed", "error"))
    assert summary["banners"], "a simulated run must carry its banners"

    dom = dump_dom(chromium, report_dir / "report.html", tmp_path)

    assert len(dom.find("p", "banner")) == len(summary["banners"])
    assert len(dom.find("tr", "config-row")) == 3
    assert len(dom.find("tr", "prompt-row")) == 4
    assert len(dom.find("details", "prompt")) == 4
    assert len(dom.find("figure", "cell")) == 36
    assert len(dom.find("figure", "failed")) == failed
    assert len(dom.find("img")) == 36
    assert len(dom.find("svg")) == expected_chart_count(summary)
    assert_hostile_prompt_is_inert(dom)
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    outside_options = page.split('<table class="facts options">')[0]
    assert str(pytester.path) not in outside_options, "an absolute path leaked into the report"


@pytest.mark.skipif(
    os.environ.get("ZIMAGE_UPDATE_SCREENSHOT") != "1",
    reason="set ZIMAGE_UPDATE_SCREENSHOT=1 to rewrite docs/images/report-example.png",
)
def test_update_docs_screenshot(chromium: str, pytester: pytest.Pytester, tmp_path: Path) -> None:
    suite = copy_example_suite(pytester.path)
    report_dir = pytester.path / "zreport"
    pytester.runpytest_subprocess(
        "-p",
        "no:randomly",
        str(suite.parent),
        "--zimage-host=simulated",
        "--zimage-weights=random",
        f"--zimage-report-dir={report_dir}",
        timeout=900,
    )
    page = report_dir / "report.html"
    shot = screenshot(chromium, page, tmp_path / "shot.png", tmp_path, DOCS_WINDOW)
    with Image.open(shot) as image:
        # 256-colour palette: the page is flat colour and the thumbnails are small
        image.convert("RGB").quantize(256, dither=Image.Dither.NONE).save(SCREENSHOT, optimize=True)
    assert SCREENSHOT.stat().st_size < 1_000_000
