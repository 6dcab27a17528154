"""The run-level check that a server really made different images for different requests."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from pytest_zimage_quality.artifacts import ReportDir
from pytest_zimage_quality.identical_images import identical_images_problem
from pytest_zimage_quality.report.html import write_html_report
from pytest_zimage_quality.report.markdown import render_markdown
from pytest_zimage_quality.settings import Settings
from pytest_zimage_quality.summary import Environment, build_summary
from pytest_zimage_quality.summary.model import with_identical_images

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "docs" / "summary.schema.json").read_text(encoding="utf-8")
)


def test_every_image_the_same_across_prompts_is_a_broken_server() -> None:
    same = "a" * 64
    problem = identical_images_problem([("cat", 1, same), ("dog", 1, same), ("cat", 2, same)])
    assert problem is not None
    assert "byte-identical" in problem
    assert "3 different prompts and seeds" in problem


def test_identical_images_of_one_prompt_and_seed_are_fine() -> None:
    # a candidate config identical to the reference makes the same bytes: not a fault
    assert identical_images_problem([("cat", 1, "a" * 64), ("cat", 1, "a" * 64)]) is None


def test_different_images_are_fine() -> None:
    assert identical_images_problem([("cat", 1, "a" * 64), ("dog", 1, "b" * 64)]) is None
    assert identical_images_problem([]) is None


def test_the_verdict_reaches_summary_json_and_every_report_through_a_banner(
    tmp_path: Path,
) -> None:
    problem = identical_images_problem([("cat", 1, "a" * 64), ("dog", 1, "a" * 64)])
    environment = Environment(
        plugin_version="0", python="3", platform="Linux", pytest="8", torch=None, device="cpu"
    )
    plain = build_summary([], suites=(), settings=Settings(), environment=environment, run_id="r")
    assert with_identical_images(plain, None) is plain
    assert plain.to_dict()["identical_images"] is None

    marked = with_identical_images(plain, problem)
    data = marked.to_dict()
    jsonschema.validate(data, SCHEMA)
    assert data["identical_images"] == problem
    (banner,) = [b for b in data["banners"] if b.startswith("IDENTICAL IMAGES — ")]
    assert "byte-identical" in banner
    # the renderers show a summary's banners at their top (report.html's view takes them as
    # they are; the Markdown quotes each)
    assert "IDENTICAL IMAGES" in render_markdown(marked)
    html = write_html_report(ReportDir(tmp_path, "r"), marked, []).read_text(encoding="utf-8")
    assert "IDENTICAL IMAGES — all 2 images of this run are byte-identical" in html
