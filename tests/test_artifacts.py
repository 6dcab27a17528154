"""Run artifacts: the results log survives SIGKILL; runs never mix; images deduplicate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from pytest_zimage_quality.artifacts import ReportDir, ResultsLog, read_results
from pytest_zimage_quality.records import CaseRecord

RECORD = CaseRecord(
    suite="s",
    case_id="cat-bf16-s1",
    prompt="cat",
    prompt_text="a cat <b>",
    config="bf16",
    config_label="BF16",
    seed=1,
    reference="bf16",
    role="reference",
    clipscore=0.31,
)

WRITER = """
import sys, time
from pathlib import Path
from pytest_zimage_quality.artifacts import ResultsLog
from pytest_zimage_quality.records import CaseRecord
log = ResultsLog(Path(sys.argv[1]), "run-1")
record = CaseRecord(suite="s", case_id="x", prompt="p", prompt_text="t" * 5000, config="c",
                    config_label="C", seed=0, reference="c", role="reference")
i = 0
while True:
    log.append(record.with_(seed=i))
    i += 1
    print(i, flush=True)
"""


def test_sigkill_leaves_only_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    written = 0
    while written < 200:
        written = int(proc.stdout.readline())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) >= written
    seeds = [json.loads(line)["seed"] for line in lines]
    assert seeds == list(range(len(lines)))
    assert all(json.loads(line)["run_id"] == "run-1" for line in lines)


def test_results_log_round_trip(tmp_path: Path) -> None:
    log = ResultsLog(tmp_path / "results.jsonl", "run-2")
    log.append(RECORD, nodeid="x::y")
    log.append(RECORD.with_(seed=2))
    log.close()
    rows = read_results(tmp_path / "results.jsonl")
    assert [r["seed"] for r in rows] == [1, 2]
    assert rows[0]["nodeid"] == "x::y"
    assert CaseRecord.from_dict(rows[0]) == RECORD.with_(run_id="run-2")


def test_a_new_run_moves_the_old_one_to_history(tmp_path: Path) -> None:
    first = ReportDir(tmp_path, "run-a")
    first.prepare()
    ResultsLog(first.results_path, "run-a").append(RECORD)
    first.write_summary({"run_id": "run-a"})
    second = ReportDir(tmp_path, "run-b")
    moved = second.prepare()
    assert moved == tmp_path / "history" / "run-a"
    assert (moved / "results.jsonl").exists()
    assert (moved / "summary.json").exists()
    assert not second.results_path.exists()
    ResultsLog(second.results_path, "run-b").append(RECORD)
    assert {r["run_id"] for r in read_results(second.results_path)} == {"run-b"}


def test_images_are_named_for_people_and_deduplicated(tmp_path: Path) -> None:
    report = ReportDir(tmp_path, "r")
    a = report.store_image("古風", "nvfp4", 42, "ab" * 32, b"one")
    again = report.store_image("古風", "nvfp4", 42, "ab" * 32, b"one")
    other = report.store_image("古風", "nvfp4", 42, "cd" * 32, b"two")
    assert a == again
    assert a != other
    assert a.relative_to(tmp_path).as_posix() == "images/古風/nvfp4/s42-abababab.png"
    assert report.relative(a) == "images/古風/nvfp4/s42-abababab.png"
    assert report.image_path("../x", "a/b", 1, "0" * 64).relative_to(tmp_path).parts[:3] == (
        "images",
        "_x",
        "a_b",
    )


def test_read_results_skips_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": 3', encoding="utf-8")
    assert read_results(path) == [{"a": 1}, {"a": 2}]


def test_a_non_finite_figure_never_costs_the_summary(tmp_path: Path) -> None:
    report = ReportDir(tmp_path / "report", "run-1")
    report.root.mkdir(parents=True)
    report.write_summary({"gate": {"lower_bound": float("-inf"), "p": float("nan")}, "n": 3})
    data = json.loads(report.summary_path.read_text(encoding="utf-8"))
    assert data == {"gate": {"lower_bound": None, "p": None}, "n": 3}
