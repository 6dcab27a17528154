"""pytest-xdist over a pool: ``-n 2`` gives the outcomes, summary decisions and case verdicts
of a run without it, with no more generations or model loads: one worker runs every zimage case
(xdist_group), so one pool schedules them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers.plugin_runs import run_plugin

#: two whole plugin runs in their own processes
pytestmark = pytest.mark.slow


def _run(directory: Path, urls: list[str], *extra: str) -> tuple[str, dict[str, Any]]:
    result = run_plugin(directory, *[f"--zimage-host={url}" for url in urls], *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((directory / "report" / "summary.json").read_text(encoding="utf-8"))
    return result.stdout, summary


def _decisions(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "exit": {k: summary["exit"][k] for k in ("gate_passed", "decisions", "reason")},
        "configs": [
            (c["key"], c["decision"], c["n_scored"], c["gate"] and c["gate"].get("lower_bound"))
            for suite in summary["suites"]
            for c in suite["configs"]
        ],
        "verdicts": summary["verdicts"],
    }


def test_two_workers_give_the_same_outcomes_summary_and_verdicts(
    tmp_path: Path, zimage_fake_comfyui_factory: Any
) -> None:
    pytest.importorskip("xdist")
    # a model load costs ten images, as on a GPU: with free loads the pool may rightly split
    # configs differently from run to run, and the load counts compared below would be noise
    fakes: list[FakeComfyUI] = [
        zimage_fake_comfyui_factory(image_latency=0.05, load_latency=0.5) for _ in range(2)
    ]
    urls = [str(fake.url) for fake in fakes]
    (tmp_path / "plain").mkdir()
    (tmp_path / "xdist").mkdir()
    plain_out, plain = _run(tmp_path / "plain", urls)
    plain_loads = [fake.model_loads for fake in fakes]
    plain_generations = [fake.generations for fake in fakes]
    xdist_out, xdist = _run(tmp_path / "xdist", urls, "-n", "2")
    # one worker runs every zimage case (xdist_group): no extra model loads or generations
    assert sum(f.model_loads for f in fakes) - sum(plain_loads) <= sum(plain_loads)
    assert sum(f.generations for f in fakes) - sum(plain_generations) == sum(plain_generations)
    assert "54 passed" in plain_out
    assert "54 passed" in xdist_out
    assert _decisions(xdist) == _decisions(plain)
