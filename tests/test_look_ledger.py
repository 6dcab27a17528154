"""The further-look note is exact: it rests on the prompts an earlier run showed a verdict on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_zimage_quality.look_ledger import ledger_path, read_looks, record_looks
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.summary.gate import further_look_notes
from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO, more_prompts, write_small_suite
from tests.helpers.doubles import CONFTEST


def _rows(prompts: dict[str, str], config: str = "fp8") -> list[CaseRecord]:
    """One candidate record per prompt; the value says where its image came from."""
    return [
        CaseRecord(
            suite="s",
            case_id=f"{p}-{config}-s1",
            prompt=p,
            prompt_text=p,
            config=config,
            config_label=config.upper(),
            seed=1,
            reference="bf16",
            role="candidate",
            clipscore=0.3,
            reference_clipscore=0.3,
            cached=cached,
        )
        for p, cached in prompts.items()
    ]


def test_the_ledger_keeps_each_configs_shown_prompts_and_counts_looks(tmp_path: Path) -> None:
    assert read_looks(tmp_path, "s") == {}
    record_looks(tmp_path, "s", {"fp8": ("non-inferior", {"a", "b"})}, run_id="r1")
    first = read_looks(tmp_path, "s")["fp8"]
    assert (first.prompts, first.decision, first.run_id, first.looks) == (
        frozenset({"a", "b"}),
        "non-inferior",
        "r1",
        1,
    )
    record_looks(tmp_path, "s", {"fp8": ("non-inferior", {"a", "b"})}, run_id="r2")
    assert read_looks(tmp_path, "s")["fp8"].looks == 1  # a plain rerun is no new look
    record_looks(tmp_path, "s", {"nvfp4": ("inferior", ("a", "b", "c"))}, run_id="r3")
    record_looks(tmp_path, "s", {"fp8": ("inconclusive", {"a", "b", "c"})}, run_id="r3")
    looks = read_looks(tmp_path, "s")
    assert looks["fp8"].looks == 2
    assert looks["nvfp4"].decision == "inferior"  # other configs are kept
    assert read_looks(tmp_path, "other suite") == {}


def test_an_unreadable_ledger_reads_as_empty(tmp_path: Path) -> None:
    path = ledger_path(tmp_path, "s")
    path.parent.mkdir(parents=True)
    path.write_text("{not json", encoding="utf-8")
    assert read_looks(tmp_path, "s") == {}
    path.write_text('{"suite": "another", "configs": {"fp8": {"prompts": ["a"]}}}', "utf-8")
    assert read_looks(tmp_path, "s") == {}


def test_gained_prompts_on_reused_images_are_a_further_look(tmp_path: Path) -> None:
    record_looks(tmp_path, "s", {"fp8": ("inconclusive", {"a", "b", "c"})}, run_id="r1")
    earlier = read_looks(tmp_path, "s")
    rows = _rows({"a": "plugin", "b": "plugin", "c": "plugin", "d": "", "e": ""})
    (note,) = further_look_notes(
        {"fp8": rows}, "bf16", earlier=earlier, prompts_now=["a", "b", "c", "d", "e"]
    )
    assert note.startswith("FP8: run r1 showed INCONCLUSIVE on 3 prompts; the suite has gained 2")
    assert "look 2 at the same data" in note


def test_no_further_look_without_a_shown_verdict_new_prompts_or_reused_images(
    tmp_path: Path,
) -> None:
    now = ["a", "b", "c", "d"]
    mixed = _rows({"a": "plugin", "b": "plugin", "c": "plugin", "d": ""})
    # no earlier verdict (e.g. the earlier run was stopped by Ctrl-C): cached images alone are
    # not a look, though the old heuristic said so
    assert further_look_notes({"fp8": mixed}, "bf16", earlier={}, prompts_now=now) == []
    record_looks(tmp_path, "s", {"fp8": ("non-inferior", set(now))}, run_id="r1")
    earlier = read_looks(tmp_path, "s")
    # the same prompts again (a rerun that regenerated one image): not a further look
    assert further_look_notes({"fp8": mixed}, "bf16", earlier=earlier, prompts_now=now) == []
    # more prompts, but every image generated afresh (--zimage-refresh): new data, no reuse
    fresh = _rows(dict.fromkeys([*now, "e"], ""))
    assert (
        further_look_notes({"fp8": fresh}, "bf16", earlier=earlier, prompts_now=[*now, "e"]) == []
    )
    # the reference config never gets the note
    assert further_look_notes({"bf16": mixed}, "bf16", earlier=earlier, prompts_now=now) == []


@pytest.mark.slow
def test_a_rerun_after_adding_prompts_is_named_a_further_look(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, zimage_fake_comfyui: FakeComfyUI
) -> None:
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", str(REPO))

    def run(tag: str) -> dict[str, Any]:
        report = pytester.path / f"report-{tag}"
        pytester.runpytest_subprocess(
            "-p",
            "no:randomly",
            f"--zimage-host={zimage_fake_comfyui.url}",
            f"--zimage-report-dir={report}",
            f"--zimage-cache-dir={pytester.path / 'cache'}",
            "--zimage-configs=bf16,fp8",
            "--zimage-seeds=1",
        )
        data: dict[str, Any] = json.loads((report / "summary.json").read_text(encoding="utf-8"))
        return data

    write_small_suite(pytester.path, extra=more_prompts(3))
    first = run("first")
    assert first["suites"][0]["notes"] == []
    again = run("again")  # the same prompts, every image from the cache: no further look
    assert again["suites"][0]["notes"] == []
    write_small_suite(pytester.path, extra=more_prompts(6))  # three prompts added after a verdict
    (note,) = run("added")["suites"][0]["notes"]
    assert note.startswith("FP8: run ")
    assert "showed NON-INFERIOR on 6 prompts; the suite has gained 3 prompts since" in note
    assert "look 2 at the same data" in note
