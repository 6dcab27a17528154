"""OCR scorer benchmark: time per image and the text accuracy each example config gets.

    python benchmarks/ocr.py [--device cpu|auto|cuda] [--sizes 1024 256] [--threads N] [--json FILE]

For each image size it renders the example suite's ``text_render`` prompt (a sign reading
"CLOSED FOR REPAIRS") with the fake server's renderer for each of the example suite's four
configs and three seeds, then runs the real OCR scorer (RapidOCR's shipped PP-OCR models on
onnxruntime) on each image and prints:

- one-off setup: import, model-file check (sha256), first call (onnxruntime session build);
- ms per image (median and max over all images of that size, after the first call);
- the mean text accuracy per config, and what was read for seed 42.

Timings on a shared CPU vary run to run; the accuracies are deterministic. The images are
simulated: NOT A QUALITY MEASUREMENT of any model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PROMPT = 'wooden storefront sign reading "CLOSED FOR REPAIRS"'
SEEDS = (42, 7777, 12345)
# The example suite's configs (example_suite/zimage_turbo.toml) as the model files they load.
CONFIGS = {
    "BF16": ("z_image_turbo_bf16.safetensors", "qwen_3_4b.safetensors", "ae.safetensors"),
    "FP8scaled": (
        "z_image_turbo_fp8_e4m3fn.safetensors",
        "qwen_3_4b.safetensors",
        "ae.safetensors",
    ),
    "NVFP4": ("z_image_turbo_nvfp4.safetensors", "qwen_3_4b.safetensors", "ae.safetensors"),
    "NVFP4+FP8e": (
        "z_image_turbo_nvfp4.safetensors",
        "qwen_3_4b_fp8_mixed.safetensors",
        "ae.safetensors",
    ),
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), auto or cuda[:N]")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 256])
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)

    from pytest_zimage_quality._fake.models import DEFAULT_MODELS, ModelRegistry
    from pytest_zimage_quality._fake.render import render_scene
    from pytest_zimage_quality.text_accuracy import quoted_text

    expected = quoted_text(PROMPT)
    assert expected is not None
    t0 = time.perf_counter()
    from pytest_zimage_quality.ocr import OCRScorer

    t1 = time.perf_counter()
    scorer = OCRScorer.load(args.device, threads=args.threads)
    t2 = time.perf_counter()
    scorer.warmup()
    t3 = time.perf_counter()
    print(scorer.describe())
    print(
        f"setup: import {1e3 * (t1 - t0):.0f} ms, load + sha256 {1e3 * (t2 - t1):.0f} ms, "
        f"first call {1e3 * (t3 - t2):.0f} ms"
    )
    registry = ModelRegistry(DEFAULT_MODELS)
    figures: dict[str, Any] = {"device": scorer.device, "sizes": {}}
    for size in args.sizes:
        times: list[float] = []
        per_config: dict[str, Any] = {}
        for label, files in CONFIGS.items():
            scores, readings = [], []
            level = 0.0
            for seed in SEEDS:
                scene = registry.scene(PROMPT, seed, size, size, files)
                level = scene.level
                pixels = render_scene(scene)
                start = time.perf_counter()
                (score,), (read,) = scorer.score([pixels], [expected])
                times.append(time.perf_counter() - start)
                scores.append(score)
                readings.append(read)
            per_config[label] = {
                "level": level,
                "accuracy_mean": statistics.fmean(scores),
                "accuracy": scores,
                "read_seed42": readings[0],
            }
        figures["sizes"][str(size)] = {
            "ms_per_image_median": 1e3 * statistics.median(times),
            "ms_per_image_max": 1e3 * max(times),
            "images": len(times),
            "configs": per_config,
        }
        print(
            f"\n{size}x{size}: {1e3 * statistics.median(times):.0f} ms per image (median of "
            f"{len(times)}, max {1e3 * max(times):.0f} ms) on {scorer.device}"
        )
        print(f"{'config':<11} {'level':>5}  {'accuracy (3 seeds)':<26} read (seed 42)")
        for label, row in per_config.items():
            accs = " ".join(f"{a:.2f}" for a in row["accuracy"])
            read = row["read_seed42"].replace("\n", " / ")
            print(f"{label:<11} {row['level']:>5.2f}  {row['accuracy_mean']:.3f} ({accs})  {read}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
