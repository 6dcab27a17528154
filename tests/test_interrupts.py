"""Stopping a run: Ctrl-C cancels our prompts on the server; SIGKILL loses no finished case."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO, write_small_suite
from tests.helpers.doubles import CONFTEST

#: Each test is a whole plugin run in a subprocess (seconds each): deselect with -m "not slow".
pytestmark = pytest.mark.slow


def start_run(tmp_path: Path, fake: FakeComfyUI, *args: str) -> subprocess.Popen[str]:
    write_small_suite(tmp_path)
    (tmp_path / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            f"--zimage-host={fake.url}",
            f"--zimage-report-dir={tmp_path / 'report'}",
            f"--zimage-cache-dir={tmp_path / 'cache'}",
            "--zimage-queue-depth=3",
            *args,
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_lines(
    path: Path, count: int, proc: subprocess.Popen[str], timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text(encoding="utf-8").count("\n") >= count:
            return
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {count} lines")


def test_ctrl_c_cancels_our_queued_prompts(tmp_path: Path, zimage_fake_comfyui_factory) -> None:
    fake = zimage_fake_comfyui_factory(image_latency=0.4)
    proc = start_run(tmp_path, fake)
    wait_for_lines(tmp_path / "report" / "results.jsonl", 2, proc)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    fake.wait_idle(timeout=10)
    queue = httpx.get(f"{fake.url}/queue", timeout=10).json()
    assert queue == {"queue_running": [], "queue_pending": []}
    assert fake.generations < 27
    # an interrupted run is INCOMPLETE in every output, never PASSED
    assert "zimage gate: INCOMPLETE — the run stopped early" in output
    assert "PASSED" not in output.split("zimage quality gate")[-1]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["exit"]["gate_passed"] is False
    assert summary["exit"]["stopped_early"]
    assert "PASSED" not in (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    lines = (tmp_path / "report" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert all(json.loads(line)["case_id"] for line in lines)


def test_sigkill_keeps_every_finished_case(tmp_path: Path, zimage_fake_comfyui_factory) -> None:
    fake = zimage_fake_comfyui_factory(image_latency=0.2)
    proc = start_run(tmp_path, fake)
    results = tmp_path / "report" / "results.jsonl"
    wait_for_lines(results, 5, proc)
    proc.kill()
    proc.communicate(timeout=60)
    text = results.read_text(encoding="utf-8")
    assert text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    assert len(records) >= 5
    assert len({r["case_id"] for r in records}) == len(records)
    assert {r["outcome"] for r in records} == {"passed"}
    assert all(Path(r["image_path"]).is_file() for r in records)
    # A rerun reuses what the killed run generated, and starts a fresh results file.
    generated_before = fake.generations
    second = zimage_fake_comfyui_factory()
    # three prompts are INSUFFICIENT DATA for the gate: advisory, this test is about the cases
    rerun = start_run(tmp_path, second, "--zimage-advisory")
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output
    assert (
        second.generations <= 27 - min(generated_before, 27) + 3
    )  # at most the in-flight ones again
    history = list((tmp_path / "report" / "history").iterdir())
    assert len(history) == 1
    assert (history[0] / "results.jsonl").read_text(encoding="utf-8") == text


def test_configs_spread_over_two_hosts(tmp_path: Path, zimage_fake_comfyui_factory) -> None:
    # a model load costs ten images, as on a GPU: with free loads, splitting a config over both
    # servers is as good as any other schedule and the count below would mean nothing
    one, two = (zimage_fake_comfyui_factory(image_latency=0.02, load_latency=0.2) for _ in "12")
    proc = start_run(tmp_path, one, f"--zimage-host={two.url}", "--zimage-advisory")
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    # 27 cases, plus the determinism check's copy of one reference on the other server
    assert one.generations + two.generations == 28
    assert one.generations
    assert two.generations
    # a server loads a config's models once for each run of its cases it is given
    assert one.model_loads + two.model_loads <= 6, (one.model_loads, two.model_loads)
    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    assert {s["url"] for s in summary["environment"]["servers"]} == {one.url, two.url}


def test_verbose_shows_generation_progress(tmp_path: Path, zimage_fake_comfyui_factory) -> None:
    fake = zimage_fake_comfyui_factory(image_latency=1.5)
    proc = start_run(tmp_path, fake, "-v", "-k", "cat and bf16")
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output
    assert "zimage: cat-bf16-s" in output
    assert "KSampler" in output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_like_ctrl_c(
    tmp_path: Path, zimage_fake_comfyui_factory, signum: signal.Signals
) -> None:
    # Slow images and a deep queue: a backlog on the server the stop must cancel, fast.
    fake = zimage_fake_comfyui_factory(image_latency=0.5)
    proc = start_run(tmp_path, fake, "--zimage-queue-depth=8")
    results = tmp_path / "report" / "results.jsonl"
    wait_for_lines(results, 2, proc)
    proc.send_signal(signum)
    signalled = time.time()
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, output
    # The plugin's part of the stop (cancel, drop the scoring backlog, write the artifacts)
    # is bounded at 10 s; pytest's own teardown after it (gc, interpreter exit) is not ours.
    summary_path = tmp_path / "report" / "summary.json"
    took = summary_path.stat().st_mtime - signalled
    assert took < 10, f"summary.json was written {took:.1f} s after the signal\n{output}"
    assert "INTERNALERROR" not in output
    fake.wait_idle(timeout=10)
    queue = httpx.get(f"{fake.url}/queue", timeout=10).json()
    assert queue == {"queue_running": [], "queue_pending": []}
    assert fake.generations < 27
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    assert len(records) >= 2
    assert len({r["case_id"] for r in records}) == len(records)
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    # never read as passed (the INCOMPLETE marking itself is the gate's, issue 11)
    assert not (summary["exit"]["gate_applied"] and summary["exit"]["gate_passed"])
    assert (tmp_path / "report" / "report.html").is_file()
