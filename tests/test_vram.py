"""VRAM sampling: readings from /system_stats bodies, attribution to configs, peaks, and a
sampler polling the fake ComfyUI while it loads one config's models and then another's."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from pytest_zimage_quality._fake.models import SAMPLING_BYTES_PER_IMAGE, VRAM_BASELINE
from pytest_zimage_quality.testing import FakeComfyUI
from pytest_zimage_quality.vram import (
    ConfigVram,
    VramSampler,
    merge_peaks,
    read_vram,
    vram_summary,
)
from tests.helpers.comfy_mock import recorded_stats
from tests.helpers.fake_graphs import run, zimage_graph

GIB = 1024**3


def body(used: int, torch_reserved: int | None = None, total: int = 80 * GIB) -> dict[str, Any]:
    device: dict[str, Any] = {"name": "cuda:0 NVIDIA H100", "type": "cuda", "index": 0}
    device.update(vram_total=total, vram_free=total - used)
    if torch_reserved is not None:
        device.update(torch_vram_total=torch_reserved, torch_vram_free=0)
    return {"system": {}, "devices": [device]}


def test_read_vram_from_the_recorded_server() -> None:
    stats = recorded_stats()
    device = stats["devices"][0]
    used, torch_reserved, total, kind = read_vram(stats) or (0, 0, 0, "")
    assert used == device["vram_total"] - device["vram_free"]
    assert torch_reserved == device["torch_vram_total"]
    assert (total, kind) == (device["vram_total"], "cpu")
    assert read_vram(stats, device=1) is None
    assert read_vram({"devices": [{"vram_total": "x"}]}) is None
    assert read_vram({}) is None


class Script:
    """A stats callable replaying readings, and the config 'being generated' at each step."""

    def __init__(self, readings: list[tuple[str | None, Mapping[str, Any] | Exception]]) -> None:
        self.readings = readings
        self.index = 0

    def stats(self) -> Mapping[str, Any]:
        reading = self.readings[self.index][1]
        if isinstance(reading, Exception):
            raise reading
        return reading

    def current(self) -> str | None:
        return self.readings[self.index][0]


def test_samples_are_attributed_to_the_config_running_and_peaks_taken() -> None:
    script = Script(
        [
            ("bf16", body(20 * GIB, 18 * GIB)),
            ("bf16", body(31 * GIB, 29 * GIB)),
            ("bf16", body(25 * GIB, 24 * GIB)),
            (None, body(25 * GIB, 24 * GIB)),  # idle between configs
            ("nvfp4", body(14 * GIB, 12 * GIB)),
            ("nvfp4", httpx.ConnectError("refused")),
            ("nvfp4", body(17 * GIB, 15 * GIB)),
        ]
    )
    clock = itertools.count()
    sampler = VramSampler(
        script.stats, current_config=script.current, clock=lambda: float(next(clock))
    )
    for index in range(len(script.readings)):
        script.index = index
        sampler.sample_once()
    assert sampler.errors == 1
    assert "ConnectError" in sampler.last_error
    assert [s.config for s in sampler.samples] == [
        "bf16",
        "bf16",
        "bf16",
        None,
        "nvfp4",
        "nvfp4",
    ]
    peaks = sampler.peaks()
    assert peaks["bf16"] == ConfigVram("bf16", 3, 31 * GIB, 29 * GIB, 80 * GIB, "cuda")
    assert peaks["nvfp4"].peak_device_bytes == 17 * GIB
    assert peaks["nvfp4"].n_samples == 2
    summary = vram_summary(peaks, reference="bf16")
    assert summary["bf16"]["change_vs_reference_bytes"] == 0
    assert summary["bf16"]["ratio_vs_reference"] == 1.0
    assert summary["nvfp4"]["change_vs_reference_bytes"] == -14 * GIB
    assert summary["nvfp4"]["ratio_vs_reference"] == pytest.approx(17 / 31)
    assert summary["nvfp4"]["peak_device_gib"] == pytest.approx(17.0)
    no_ref = vram_summary({"nvfp4": peaks["nvfp4"]}, reference="bf16")
    assert no_ref["nvfp4"]["change_vs_reference_bytes"] is None


def test_a_sample_across_a_config_switch_is_not_attributed() -> None:
    configs = iter(["bf16", "nvfp4"])  # changes between the two reads around the poll
    sampler = VramSampler(lambda: body(GIB), current_config=lambda: next(configs))
    sample = sampler.sample_once()
    assert sample is not None
    assert sample.config is None
    assert sampler.peaks() == {}


def test_a_server_without_memory_figures_is_counted_not_invented() -> None:
    sampler = VramSampler(lambda: {"devices": []}, current_config=lambda: "bf16")
    assert sampler.sample_once() is None
    assert sampler.errors == 1
    assert "no VRAM figures" in sampler.last_error
    assert sampler.peaks() == {}
    with pytest.raises(ValueError, match="interval"):
        VramSampler(dict, current_config=lambda: None, interval=0)


def test_merge_keeps_the_highest_peak_of_a_config_split_over_servers() -> None:
    a = {"bf16": ConfigVram("bf16", 4, 30 * GIB, None, 80 * GIB, "cuda")}
    b = {
        "bf16": ConfigVram("bf16", 2, 33 * GIB, 31 * GIB, 80 * GIB, "cuda"),
        "nvfp4": ConfigVram("nvfp4", 5, 12 * GIB, 11 * GIB, 80 * GIB, "cuda"),
    }
    merged = merge_peaks([a, b])
    assert merged["bf16"] == ConfigVram("bf16", 6, 33 * GIB, 31 * GIB, 80 * GIB, "cuda")
    assert merged["nvfp4"] == b["nvfp4"]


def test_the_sampler_thread_sees_each_configs_models_on_the_fake_server() -> None:
    current: list[str | None] = [None]
    with (
        FakeComfyUI(device="cuda:0 NVIDIA H200", vram_total=140 * GIB) as fake,
        httpx.Client(base_url=fake.url, timeout=10) as http,
    ):

        def stats() -> Mapping[str, Any]:
            data: Mapping[str, Any] = http.get("/system_stats").json()
            return data

        with VramSampler(stats, current_config=lambda: current[0], interval=0.01) as sampler:
            for config in ("bf16", "nvfp4"):
                current[0] = config
                fake.faults.stall_generation(0.3)  # a sampler step long enough to be seen
                run(fake, http, zimage_graph(config, size=32))
                current[0] = None
                time.sleep(0.05)
        assert sampler.errors == 0
        assert not any(t.name == "zimage-vram" for t in threading.enumerate())
        peaks = sampler.peaks()
        bf16_files = ("z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "ae.safetensors")
        bf16_models = sum(fake.model_size(f) for f in bf16_files)
        assert peaks["bf16"].peak_device_bytes == (
            VRAM_BASELINE + bf16_models + SAMPLING_BYTES_PER_IMAGE
        )
        assert peaks["bf16"].peak_torch_bytes == bf16_models + SAMPLING_BYTES_PER_IMAGE
        assert VRAM_BASELINE < peaks["nvfp4"].peak_device_bytes < peaks["bf16"].peak_device_bytes
        assert peaks["bf16"].n_samples > 5
        change = vram_summary(peaks, "bf16")["nvfp4"]["change_vs_reference_bytes"]
        assert change < 0  # the swap bought memory, and the sampler shows it
