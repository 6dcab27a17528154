"""The Ray pool on a local one-machine Ray cluster whose actors serve the built-in fake ComfyUI.

Ray takes seconds to start, so the module shares one cluster (2 CPUs, no GPU: the actors ask
for ``num_gpus=0`` here, where a real pool asks for one GPU each).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_zimage_quality.hardware import HardwareProfile, classify
from pytest_zimage_quality.launcher import LaunchError, fake_command
from pytest_zimage_quality.ray_pool import RayPool

#: Each test starts a local Ray cluster (seconds): deselect with -m "not slow".
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/system_stats", timeout=5) as reply:
        body = json.loads(reply.read().decode())
    assert isinstance(body, dict)
    return body


def test_actors_serve_the_fake_and_are_torn_down(ray_cluster: Any, tmp_path: Any) -> None:
    command = fake_command("--device", "cuda:0 NVIDIA H200 : cudaMallocAsync")
    pool = RayPool(
        command,
        servers=2,
        num_gpus=0,
        num_cpus=0.5,
        ready_timeout=60,
        log_dir=str(tmp_path),
        listen="127.0.0.1",
    )
    with pool as servers:
        assert len(servers) == 2
        assert len({s.url for s in servers}) == 2
        for server in servers:
            assert _stats(server.url)["system"]["comfyui_version"] == "0.18.1"
            assert server.node_ip
        profiles = [HardwareProfile.from_system_stats(s.url, s.system_stats) for s in servers]
        (klass,) = classify(profiles)
        assert klass.profile.gpu == "NVIDIA H200"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            p.split("/")[-1] for p in (s.log_path for s in servers)
        )
    for server in servers:
        with pytest.raises((urllib.error.URLError, OSError)):
            _stats(server.url)
    assert pool.actors == []
    assert ray_cluster.is_initialized()  # a cluster the pool did not start stays up
    pool.stop()  # idempotent


def test_a_server_that_cannot_start_is_one_clear_error(ray_cluster: Any, tmp_path: Any) -> None:
    command = [sys.executable, "-c", "import sys; print('no CUDA here'); sys.exit(4)"]
    pool = RayPool(command, servers=1, num_gpus=0, num_cpus=0.5, log_dir=str(tmp_path))
    with pytest.raises(LaunchError, match="failed to start its server") as info:
        pool.start()
    assert "no CUDA here" in str(info.value)
    assert pool.actors == []


def test_a_cluster_without_gpus_is_refused(ray_cluster: Any) -> None:
    with pytest.raises(LaunchError, match="no GPU"):
        RayPool(fake_command()).start()
