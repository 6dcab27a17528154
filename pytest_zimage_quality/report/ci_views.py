"""Rows the CI-native outputs share (terminal, Markdown, report.html): speed and VRAM per
config, the measured noise floor. Read from a RunSummary only, so the three agree."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..summary import RunSummary

__all__ = ["SPEED_MEMORY_HEADERS", "VRAM_NOTE", "noise_floor_text", "speed_memory_rows"]

SPEED_MEMORY_HEADERS = ("config", "speedup", "peak VRAM", "VRAM vs reference", "samples")
#: The method's limits, shown wherever the figures are (docs/ci.md: VRAM beside speed).
VRAM_NOTE = (
    "peak VRAM: the server's whole device (vram_total − vram_free in /system_stats) sampled "
    "while the config's images were generated; ComfyUI keeps models loaded between configs, "
    "so a peak can include an earlier config's models, and a peak shorter than the sampling "
    "interval can be missed"
)
_GIB = 1024**3


def _gib(value: Any) -> str:
    return f"{value / _GIB:.2f} GiB" if isinstance(value, int | float) else "—"


def speed_memory_rows(summary: RunSummary) -> list[list[str]]:
    """One row per config with VRAM samples or a speedup: label, speedup, peak, change."""
    vram = dict(summary.vram or {})
    multi = len(summary.suites) > 1
    rows = []
    for suite in summary.suites:
        for config in suite.configs:
            name = f"{suite.name}/{config.key}" if multi else config.key
            entry = vram.get(name) or {}
            speedup = config.speed.speedup
            if not entry and speedup is None:
                continue
            ratio = entry.get("ratio_vs_reference")
            change = entry.get("change_vs_reference_bytes")
            if config.is_reference:
                versus = "reference"
            elif isinstance(ratio, int | float) and isinstance(change, int):
                versus = f"{(ratio - 1) * 100:+.0f}% ({change / _GIB:+.2f} GiB)"
            else:
                versus = "—"
            label = f"{suite.name}/{config.label}" if multi else config.label
            rows.append(
                [
                    label,
                    "ref" if config.is_reference else (f"{speedup:.2f}×" if speedup else "—"),
                    _gib(entry.get("peak_device_bytes")) if entry else "not sampled",
                    versus if entry else "—",
                    str(entry.get("n_samples", 0)),
                ]
            )
    return rows


def noise_floor_text(summary: RunSummary) -> str | None:
    """The measured noise floor in one sentence, with the margin warning if there is one."""
    floor = summary.noise_floor
    if not floor:
        return None
    n, same = floor.get("n_pairs", 0), floor.get("n_identical", 0)
    clip = floor.get("clip_floor")
    text = (
        f"noise floor (determinism check): {same} of {n} regenerated images identical to the "
        f"cached ones; largest CLIPScore change {clip:.4f}"
        if isinstance(clip, int | float)
        else f"noise floor (determinism check): {n} regenerated image(s), not measured"
    )
    lpips = floor.get("lpips_max")
    if isinstance(lpips, int | float) and lpips > 0:
        text += f", largest LPIPS {lpips:.4f}"
    margins = floor.get("margins") or {}
    if margins:
        text += "; margin δ " + ", ".join(f"{k} {v:g}" for k, v in margins.items())
    warning = floor.get("margin_warning")
    return f"{text}. WARNING: {warning}" if warning else text
