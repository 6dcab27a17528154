"""What text accuracy costs a run: OCR time per image, and a 72-case dry run with and without it.

Called by ``python benchmarks/scorers.py --ocr`` (one command, figures side by side):

- OCR ms per 1024² image of the fake's ``text_render`` sign, on the CPU with the threads a
  run gives it (``scorers._builtin.ocr_threads``), and on CUDA when onnxruntime-gpu is present
  (``benchmarks/ocr.py`` does the timing);
- the example suite's 72-case dry run (``--zimage-host=simulated --zimage-weights=random``)
  twice per repeat, alternating: with OCR (the suite as shipped, ``text_from_quotes = true``)
  and without (the same suite with ``text_from_quotes = false``, so no prompt asks for text
  and the OCR scorer is not built). Each run has a fresh image cache and report dir, so both
  generate every image. The ratio of the medians is the overhead; issue 15 asks for <= 1.10.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))


def ocr_per_image() -> dict[str, Any]:
    import ocr as ocr_bench  # benchmarks/ocr.py

    from pytest_zimage_quality.scorers._builtin import ocr_threads

    figures = {}
    devices = ["cpu"]
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        devices.append("cuda")
    for device in devices:
        threads = ["--threads", str(ocr_threads())] if device == "cpu" else []
        result = ocr_bench.main(["--device", device, "--sizes", "1024", *threads])
        figures[device] = result["sizes"]["1024"]["ms_per_image_median"]
    return figures


def _suite_copy(root: Path, with_ocr: bool) -> Path:
    target = root / ("with-ocr" if with_ocr else "without-ocr")
    shutil.copytree(REPO / "example_suite", target, ignore=shutil.ignore_patterns("__pycache__"))
    suite = target / "zimage_turbo.toml"
    text = suite.read_text(encoding="utf-8")
    assert "text_from_quotes = true" in text
    if not with_ocr:
        suite.write_text(text.replace("text_from_quotes = true", "text_from_quotes = false"))
    return suite


def _dry_run(suite: Path, work: Path) -> float:
    shutil.rmtree(work, ignore_errors=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), "--zimage-host=simulated",
         "--zimage-weights=random", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
         f"--zimage-report-dir={work / 'report'}", f"--zimage-cache-dir={work / 'cache'}"],
        cwd=suite.parent, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0 or "72 passed" not in done.stdout:
        raise SystemExit(f"the dry run of {suite} failed:\n{done.stdout[-3000:]}{done.stderr}")
    return seconds


def dry_run_overhead(repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="zimage-ocr-bench-") as tmp:
        root = Path(tmp)
        suites = {True: _suite_copy(root, True), False: _suite_copy(root, False)}
        times: dict[bool, list[float]] = {True: [], False: []}
        for i in range(repeats):
            for with_ocr in (False, True) if i % 2 == 0 else (True, False):
                seconds = _dry_run(suites[with_ocr], root / "work")
                times[with_ocr].append(seconds)
                print(f"  dry run {'with' if with_ocr else 'without'} OCR: {seconds:.1f} s")
    median_with, median_without = statistics.median(times[True]), statistics.median(times[False])
    return {
        "with_ocr_s": times[True],
        "without_ocr_s": times[False],
        "ratio_of_medians": median_with / median_without,
    }


def main(repeats: int) -> dict[str, Any]:
    print("OCR time per 1024² image (benchmarks/ocr.py):")
    per_image = ocr_per_image()
    print(f"\n72-case dry run of the example suite, with and without OCR ({repeats} each):")
    overhead = dry_run_overhead(repeats)
    print("\nsummary:")
    for device, ms in per_image.items():
        print(f"  OCR {device}: {ms:.0f} ms per 1024² image")
    print(
        f"  dry run: without OCR {statistics.median(overhead['without_ocr_s']):.1f} s, with OCR "
        f"{statistics.median(overhead['with_ocr_s']):.1f} s (medians): "
        f"{overhead['ratio_of_medians']:.3f}× (target <= 1.10)"
    )
    return {"ocr_ms_per_image": per_image, "dry_run": overhead}
