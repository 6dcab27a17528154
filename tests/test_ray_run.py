"""The Ray path through the plugin, end to end: ``--zimage-ray=local --zimage-comfyui=fake``
starts a one-machine Ray cluster whose actors serve the built-in fake ComfyUI, the suite runs
on them as its pool, and the actors' servers are gone when the run ends."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.helpers.plugin_runs import run_plugin

#: Ray takes seconds to start, and the suite runs through a whole pytest process.
pytestmark = pytest.mark.slow


def test_a_suite_runs_on_ray_actors_and_they_are_torn_down(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    result = run_plugin(
        tmp_path,
        "--zimage-ray=local",
        "--zimage-comfyui=fake",
        "--zimage-gpus=none",  # this machine has no GPU: one CPU per actor
        "--zimage-ray-servers=2",
        env={"RAY_DEDUP_LOGS": "0"},
    )
    output = result.stdout + result.stderr
    assert "54 passed" in result.stdout, output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    urls = sorted(s["url"] for s in summary["environment"]["servers"])
    assert len(urls) == 2
    pool = {s["url"]: s for s in summary["pool"]["servers"]}
    assert sorted(pool) == urls
    assert all(s["images"] > 0 for s in pool.values())  # both actors' servers worked
    records = [
        json.loads(line)
        for line in (tmp_path / "report" / "results.jsonl").read_text().splitlines()
    ]
    assert {r["host"] for r in records} == set(urls)  # both actors made images
    logs = sorted(p.name for p in (tmp_path / "report" / "servers").iterdir())
    assert len(logs) == 2, logs  # each actor's server log kept in the report directory
    for url in urls:  # the actors' servers are stopped with the run
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/system_stats", timeout=2)
