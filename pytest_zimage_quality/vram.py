"""VRAM beside speed: the peak memory the server used while each config's images were made.

A model swap is meant to buy speed or memory; the gate already reports speed. This samples
the server's ``GET /system_stats`` on a background thread every ``interval`` seconds and
attributes each sample to the config the server is generating at that moment (the
``current_config`` callable, which the engine answers from the prompt it has running).

Two figures per sample, from ``devices[i]``:

- **device**: ``vram_total - vram_free``, what the whole GPU has in use;
- **torch**: ``torch_vram_total``, what ComfyUI's torch has reserved (its caching allocator's
  pool; ``torch_vram_free`` is the part of that pool not allocated right now).

Limits, stated wherever the figures are shown (docs/ci.md):

- *whole device*: the device figure includes every other process on the GPU (another
  server, a desktop, the plugin's own scorers when they share the GPU);
- *model cache*: ComfyUI keeps models loaded between prompts and unloads them only under
  memory pressure, so a config's samples can include models of the config before it. The
  peak is an upper bound of what the config needs, and the change against the reference is
  only meaningful when configs run in separate server processes or the server runs with
  ``--cache-none`` / the models fit both at once;
- *sampling*: a peak shorter than the interval (the VAE decode's, typically) can be missed;
  the number of samples is reported beside each peak;
- on a ``--cpu`` server the "VRAM" ComfyUI reports is system RAM.

The sampler takes a callable returning the stats body, so it runs without a network in
tests; in a run it is the ComfyUI client's ``/system_stats``. No pytest, no torch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_INTERVAL",
    "ConfigVram",
    "VramSample",
    "VramSampler",
    "merge_peaks",
    "read_vram",
    "vram_summary",
]

#: Seconds between samples: ``/system_stats`` costs the server well under a millisecond.
DEFAULT_INTERVAL = 0.25

_GIB = 1024**3


@dataclass(frozen=True)
class VramSample:
    """One reading of one device."""

    at: float  # monotonic seconds
    config: str | None  # the config being generated, None when the server was idle
    device_used: int  # vram_total - vram_free
    torch_reserved: int | None  # torch_vram_total, when the server reports it
    device_total: int
    device_type: str  # "cuda", "cpu", ...


def read_vram(
    stats: Mapping[str, Any], *, device: int = 0
) -> tuple[int, int | None, int, str] | None:
    """(device used, torch reserved, device total, device type) from a ``/system_stats``
    body; None when it reports no such device or no memory figures."""
    devices = stats.get("devices")
    if not isinstance(devices, list) or len(devices) <= device:
        return None
    entry = devices[device]
    if not isinstance(entry, Mapping):
        return None
    total, free = entry.get("vram_total"), entry.get("vram_free")
    if not isinstance(total, int) or not isinstance(free, int) or total <= 0:
        return None
    torch_total = entry.get("torch_vram_total")
    return (
        max(0, total - free),
        torch_total if isinstance(torch_total, int) else None,
        total,
        str(entry.get("type") or ""),
    )


@dataclass(frozen=True)
class ConfigVram:
    """The peak of one config's samples."""

    config: str
    n_samples: int
    peak_device_bytes: int
    peak_torch_bytes: int | None
    device_total: int
    device_type: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_samples": self.n_samples,
            "peak_device_bytes": self.peak_device_bytes,
            "peak_torch_bytes": self.peak_torch_bytes,
            "device_total": self.device_total,
            "device_type": self.device_type,
        }


class VramSampler:
    """Polls one server's VRAM on a daemon thread while a run generates.

    ``with VramSampler(client_stats, current_config=engine.running_config) as sampler: ...``;
    then ``sampler.peaks()``. A failed poll is counted (``errors``) and sampling goes on:
    memory figures are information, never a reason to fail a run.
    """

    def __init__(
        self,
        stats: Callable[[], Mapping[str, Any]],
        *,
        current_config: Callable[[], str | None],
        interval: float = DEFAULT_INTERVAL,
        device: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        self._stats = stats
        self._current = current_config
        self._interval = interval
        self._device = device
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: list[VramSample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_error = ""

    def sample_once(self) -> VramSample | None:
        """Take one sample now (the thread's step; callable directly)."""
        config = self._current()
        try:
            reading = read_vram(self._stats(), device=self._device)
        except Exception as exc:  # any failed poll is only counted
            with self._lock:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
            return None
        if reading is None:
            with self._lock:
                self.errors += 1
                self.last_error = "the server reported no VRAM figures for this device"
            return None
        # The config is read before the poll and again after it: a sample taken across a
        # switch between configs belongs to neither, so it is not attributed.
        if self._current() != config:
            config = None
        used, torch_reserved, total, kind = reading
        sample = VramSample(self._clock(), config, used, torch_reserved, total, kind)
        with self._lock:
            self._samples.append(sample)
        return sample

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self._interval)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="zimage-vram", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, 2 * self._interval))
            self._thread = None

    def __enter__(self) -> VramSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def samples(self) -> list[VramSample]:
        with self._lock:
            return list(self._samples)

    def peaks(self) -> dict[str, ConfigVram]:
        """Per config: the highest device and torch figures among its samples."""
        return _peaks(self.samples)


def _peaks(samples: Iterable[VramSample]) -> dict[str, ConfigVram]:
    by_config: dict[str, list[VramSample]] = {}
    for sample in samples:
        if sample.config is not None:
            by_config.setdefault(sample.config, []).append(sample)
    out = {}
    for config, rows in by_config.items():
        torch_values = [s.torch_reserved for s in rows if s.torch_reserved is not None]
        out[config] = ConfigVram(
            config=config,
            n_samples=len(rows),
            peak_device_bytes=max(s.device_used for s in rows),
            peak_torch_bytes=max(torch_values) if torch_values else None,
            device_total=rows[0].device_total,
            device_type=rows[0].device_type,
        )
    return out


def merge_peaks(per_server: Iterable[Mapping[str, ConfigVram]]) -> dict[str, ConfigVram]:
    """One config spread over several servers: its highest peak, and all its samples counted."""
    merged: dict[str, ConfigVram] = {}
    for peaks in per_server:
        for config, peak in peaks.items():
            seen = merged.get(config)
            if seen is None:
                merged[config] = peak
                continue
            best = peak if peak.peak_device_bytes > seen.peak_device_bytes else seen
            torch_values = [
                v for v in (seen.peak_torch_bytes, peak.peak_torch_bytes) if v is not None
            ]
            merged[config] = ConfigVram(
                config=config,
                n_samples=seen.n_samples + peak.n_samples,
                peak_device_bytes=best.peak_device_bytes,
                peak_torch_bytes=max(torch_values) if torch_values else None,
                device_total=best.device_total,
                device_type=best.device_type,
            )
    return merged


def vram_summary(peaks: Mapping[str, ConfigVram], reference: str) -> dict[str, dict[str, Any]]:
    """summary.json's per-config ``vram`` block: the peaks, in GiB too, and each candidate's
    change against the reference config (bytes and ratio); None where a side has no samples."""
    ref = peaks.get(reference)
    out = {}
    for config, peak in peaks.items():
        entry = peak.to_dict()
        entry["peak_device_gib"] = peak.peak_device_bytes / _GIB
        if ref is not None and config != reference:
            entry["change_vs_reference_bytes"] = peak.peak_device_bytes - ref.peak_device_bytes
            entry["ratio_vs_reference"] = (
                peak.peak_device_bytes / ref.peak_device_bytes if ref.peak_device_bytes else None
            )
        else:
            entry["change_vs_reference_bytes"] = 0 if config == reference else None
            entry["ratio_vs_reference"] = 1.0 if config == reference else None
        out[config] = entry
    return out
