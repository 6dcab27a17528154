"""A pool run through the plugin on three fake servers, one reporting another GPU: the header
and the terminal summary name the hardware classes, summary.json carries the classes, the
determinism check and each server's work, every record names its server, and the learnt
speeds are kept in pytest's cache for the next run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_zimage_quality.generation import ESTIMATES_KEY
from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers import REPO
from tests.helpers.plugin_runs import run_plugin

#: a whole plugin run in its own process
pytestmark = pytest.mark.slow

H100 = "cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"
GB10 = "cuda:0 NVIDIA GB10 : cudaMallocAsync"
SCHEMA = json.loads((REPO / "docs" / "summary.schema.json").read_text(encoding="utf-8"))


def test_a_pool_run_reports_classes_determinism_and_servers(
    tmp_path: Path, zimage_fake_comfyui_factory: Any
) -> None:
    fakes: list[FakeComfyUI] = [
        zimage_fake_comfyui_factory(device=device) for device in (H100, H100, GB10)
    ]
    urls = [str(fake.url) for fake in fakes]
    result = run_plugin(tmp_path, *[f"--zimage-host={url}" for url in urls], cache_provider=True)
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "54 passed" in out
    # the header: one line per class, before anything runs
    assert "zimage: hardware class 1 of 2: NVIDIA H100 80GB HBM3" in out
    assert "zimage: hardware class 2 of 2: NVIDIA GB10 · ComfyUI 0.18.1" in out

    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    jsonschema.validate(summary, SCHEMA)
    classes = summary["hardware_classes"]
    assert [c["gpu"] for c in classes] == ["NVIDIA H100 80GB HBM3", "NVIDIA GB10"]
    assert [len(c["servers"]) for c in classes] == [2, 1]
    (checked,) = summary["determinism"]["classes"]
    assert checked["id"] == classes[0]["id"]
    assert checked["bit_identical"]
    servers = summary["pool"]["servers"]
    assert sorted(s["url"] for s in servers) == sorted(urls)
    assert all(s["images"] > 0 for s in servers)
    # the terminal summary: each class with its id, each server's work
    for klass in classes:
        assert f"zimage hardware class {klass['id']}: " in out
    for url in urls:
        assert f"zimage server {url}: " in out

    records = [
        json.loads(line)
        for line in (tmp_path / "report" / "results.jsonl").read_text().splitlines()
    ]
    assert {r["host"] for r in records} == set(urls)
    # a reference and its candidates are made within one class
    class_of = {url: c["id"] for c in classes for url in c["servers"]}
    pairs: dict[tuple[str, int], set[str]] = {}
    for record in records:
        pairs.setdefault((record["prompt"], record["seed"]), set()).add(class_of[record["host"]])
    mixed = {pair: made_in for pair, made_in in pairs.items() if len(made_in) != 1}
    assert not mixed, (mixed, [(r["case_id"], r["host"]) for r in records])

    cache = tmp_path / ".pytest_cache" / "v" / ESTIMATES_KEY
    estimates = json.loads(cache.read_text(encoding="utf-8"))
    assert set(estimates) == {c["id"] for c in classes}
