"""Pool runs through the plugin: servers started per GPU (here: CPU fakes) and a hosts file."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from pytest_zimage_quality.testing import FakeComfyUI
from tests.helpers.plugin_runs import run_plugin

#: Each test runs the plugin in a subprocess against started fake servers.
pytestmark = pytest.mark.slow


def test_started_servers_form_the_pool_keep_their_logs_and_are_stopped(tmp_path: Path) -> None:
    result = run_plugin(
        tmp_path, "--zimage-comfyui=fake", "--zimage-gpus=none", "--zimage-cpu-servers=2"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "54 passed" in result.stdout
    logs = sorted(p.name for p in (tmp_path / "report" / "servers").iterdir())
    assert logs == ["comfyui-cpu0.log", "comfyui-cpu1.log"]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    urls = [s["url"] for s in summary["environment"]["servers"]]
    assert len(urls) == 2
    for url in urls:  # stopped at the end of the run
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/system_stats", timeout=2)


def test_a_hosts_file_adds_its_servers_to_the_pool(
    tmp_path: Path, zimage_fake_comfyui_factory
) -> None:
    one: FakeComfyUI = zimage_fake_comfyui_factory()
    two: FakeComfyUI = zimage_fake_comfyui_factory()
    hosts = tmp_path / "hosts.txt"
    hosts.write_text(f"# the pool\n{two.url}\n\n", encoding="utf-8")
    result = run_plugin(tmp_path, f"--zimage-host={one.url}", f"--zimage-hosts-file={hosts}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert one.generations
    assert two.generations
    summary = json.loads((tmp_path / "report" / "summary.json").read_text(encoding="utf-8"))
    assert {s["url"] for s in summary["environment"]["servers"]} == {one.url, two.url}


def test_a_bad_line_in_the_hosts_file_is_named(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("gb10:notaport\n", encoding="utf-8")
    result = run_plugin(tmp_path, f"--zimage-hosts-file={hosts}")
    assert result.returncode != 0
    assert f"{hosts}:1" in result.stdout + result.stderr
