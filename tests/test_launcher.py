"""The local launcher against the built-in fake ComfyUI started as real processes."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from pytest_zimage_quality.hardware import HardwareProfile, classify
from pytest_zimage_quality.launcher import (
    LaunchError,
    LocalLauncher,
    ServerProcess,
    comfyui_command,
    discover_gpus,
    fake_command,
)

FAKE_GPU = fake_command("--device", "cuda:{gpu} NVIDIA H200 : cudaMallocAsync")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): read its state
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_one_server_per_gpu_ready_then_stopped(tmp_path: Path) -> None:
    launcher = LocalLauncher(FAKE_GPU, log_dir=tmp_path / "logs", gpus=["0", "1"], ready_timeout=60)
    with launcher as servers:
        assert [s.gpu for s in servers] == ["0", "1"]
        assert len({s.port for s in servers}) == 2
        assert all(s.url == f"http://127.0.0.1:{s.port}" for s in servers)
        names = [s.system_stats["devices"][0]["name"] for s in servers]
        assert names == [
            "cuda:0 NVIDIA H200 : cudaMallocAsync",
            "cuda:1 NVIDIA H200 : cudaMallocAsync",
        ]
        profiles = [HardwareProfile.from_system_stats(s.url, s.system_stats) for s in servers]
        assert len(classify(profiles)) == 1  # two GPUs of one kind: one hardware class
        pids = [s.pid for s in servers]
        assert all(_alive(pid) for pid in pids)
    assert not any(_alive(pid) for pid in pids)
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == ["comfyui-gpu0.log", "comfyui-gpu1.log"]
    assert "serving on" in (tmp_path / "logs" / "comfyui-gpu0.log").read_text()
    launcher.stop()  # idempotent


def test_no_gpu_is_a_clear_error_unless_cpu_servers_are_asked_for(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="no GPU found") as info:
        LocalLauncher(FAKE_GPU, log_dir=tmp_path, gpus=[]).start()
    assert "ZIMAGE_GPUS" in str(info.value)
    with LocalLauncher(fake_command(), log_dir=tmp_path, gpus=[], cpu_servers=1) as servers:
        assert servers[0].gpu is None
        assert servers[0].system_stats["devices"][0]["name"] == "cpu"


def test_a_server_that_exits_early_is_reported_with_its_log(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('CUDA error: no device'); sys.exit(3)"]
    launcher = LocalLauncher(command, log_dir=tmp_path, gpus=["0"], attempts=1)
    with pytest.raises(LaunchError, match="exited with status 3") as info:
        launcher.start()
    assert "CUDA error: no device" in str(info.value)


def test_a_server_that_never_answers_is_killed_at_the_deadline(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; time.sleep(120)"]
    launcher = LocalLauncher(command, log_dir=tmp_path, gpus=["0"], ready_timeout=1.0)
    with pytest.raises(LaunchError, match="did not answer"):
        launcher.start()
    assert launcher.processes[0].process is None  # stopped on the way out


def test_stop_kills_the_whole_process_group_after_the_grace(tmp_path: Path) -> None:
    # a server that ignores SIGTERM and has a child: both end
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    process = ServerProcess([sys.executable, "-c", script], log_path=tmp_path / "s.log")
    process.start()
    try:
        assert process.process is not None
        pid = process.process.pid
        child = _wait_for_number(process.log_path)
    finally:
        process.stop(grace=0.5)
    assert not _alive(pid)
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    process.stop()  # a second stop does nothing


def _wait_for_number(path: Path) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        last = path.read_text().splitlines()[-1]
        if last.isdigit():
            return int(last)
        time.sleep(0.05)
    raise AssertionError(f"no pid in {path}")


def test_gpu_discovery_order() -> None:
    smi = "GPU 0: NVIDIA H200 (UUID: GPU-aa)\nGPU 1: NVIDIA H200 (UUID: GPU-bb)\n"
    assert discover_gpus({}, run=lambda argv: smi) == ["0", "1"]
    assert discover_gpus({"CUDA_VISIBLE_DEVICES": "2,3"}, run=lambda argv: smi) == ["2", "3"]
    assert discover_gpus({"ZIMAGE_GPUS": "1", "CUDA_VISIBLE_DEVICES": "2,3"}) == ["1"]
    assert discover_gpus({"ZIMAGE_GPUS": "none"}) == []
    assert discover_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []

    def missing(argv: object) -> str:
        raise FileNotFoundError("nvidia-smi")

    assert discover_gpus({}, run=missing) == []


def test_comfyui_command_needs_a_main_py(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match=r"no ComfyUI main\.py"):
        comfyui_command(tmp_path)
    (tmp_path / "main.py").write_text("")
    assert comfyui_command(tmp_path, python="py")[:2] == ["py", str(tmp_path / "main.py")]
