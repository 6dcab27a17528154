"""Scoring memory benchmark: what one batch of pairs costs, with and without the memory budget.

    python benchmarks/scoring_memory.py [--device cpu|cuda] [--side 1024] [--pairs 16]
                                        [--budgets 0,256,512,2048] [--json FILE]

For each built-in device metric (CLIPScore, LPIPS alex) it scores ``--pairs`` pairs of
``--side``² images through the plugin's own call sizing (``metric_calls.MetricCalls``: the
scoring worker's path), once per budget (0 = no budget: one call for the whole batch, as
before the budget existed), and prints the calls' sizes and the peak memory above the
loaded models: on CUDA ``torch.cuda.max_memory_allocated``, on the CPU the peak resident
set of a fresh process (each measurement runs in its own subprocess). It also prints the
measured working bytes per pixel next to the figure ``scorers/_budget.py`` assumes.

Random weights (nothing to download): memory does not depend on the weights. The whole
suite's figure (peak RSS of a dry run) is measured with ``/usr/bin/time -v``; the command
and the numbers are in docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from pytest_zimage_quality.metric_calls import MetricCalls
from pytest_zimage_quality.metrics import PromptInfo, ScoreBatch
from pytest_zimage_quality.scorers import (
    CLIPScorer,
    LPIPSScorer,
    clip_specs,
    lpips_spec,
    working_bytes_per_pixel,
)


def _measure(device: str, side: int, pairs: int, metric: str, budget_mib: int) -> dict[str, Any]:
    if metric == "lpips":
        spec = lpips_spec(LPIPSScorer.load("alex", random_weights=True, device=device))
    else:
        clip = CLIPScorer.load(random_weights=True, device=device)
        spec = next(s for s in clip_specs(clip) if s.name == "clipscore")
    gen = torch.Generator().manual_seed(0)
    images = [
        torch.randint(0, 256, (3, side, side), dtype=torch.uint8, generator=gen).to(device)
        for _ in range(2 * pairs)
    ]
    calls = MetricCalls(batch_size=16, memory_budget=budget_mib * 2**20 if budget_mib else None)
    sizes = [part.stop - part.start for part in calls.chunks(spec, [side * side] * pairs)]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = 0
    for size in sizes:
        batch = ScoreBatch(
            images=images[start : start + size],
            prompts=[_prompt()] * size,
            keys=[f"c{i}" for i in range(start, start + size)],
            references=images[pairs + start : pairs + start + size] if metric == "lpips" else [],
            reference_keys=[f"r{i}" for i in range(start, start + size)]
            if metric == "lpips"
            else [],
        )
        spec.score(batch)
        start += size
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {
        "metric": metric,
        "device": device,
        "side": side,
        "pairs": pairs,
        "budget_mib": budget_mib,
        "calls": sizes,
        "peak_mib": round(peak / 2**20, 1),
        "bytes_per_pixel": round(peak / (max(sizes) * side * side), 1),
        "assumed_bytes_per_pixel": working_bytes_per_pixel(spec),
    }


def _prompt() -> PromptInfo:
    return PromptInfo(key="p", text="a photo of a cat")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--side", type=int, default=1024)
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--budgets", default="0,256,512,2048", help="MiB; 0 = no budget")
    ap.add_argument("--metrics", default="lpips,clipscore")
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one measurement, JSON out
    args = ap.parse_args()
    if args.one:
        metric, budget = args.one.split(":")
        print(json.dumps(_measure(args.device, args.side, args.pairs, metric, int(budget))))
        return
    rows = []
    print(f"{'metric':10} {'budget MiB':>10} {'calls':>22} {'peak MiB':>9} {'B/px':>7} assumed")
    for metric in args.metrics.split(","):
        for budget in (int(b) for b in args.budgets.split(",")):
            out = subprocess.run(
                [sys.executable, __file__, "--device", args.device, "--side", str(args.side),
                 "--pairs", str(args.pairs), "--one", f"{metric}:{budget}"],
                check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]  # fmt: skip
            row = json.loads(out)
            rows.append(row)
            calls = ",".join(str(c) for c in row["calls"])
            calls = (
                calls
                if len(calls) <= 22
                else f"{len(row['calls'])} calls of <= {max(row['calls'])}"
            )
            assumed = row["assumed_bytes_per_pixel"]
            print(
                f"{metric:10} {budget or '-':>10} {calls:>22} {row['peak_mib']:>9} "
                f"{row['bytes_per_pixel']:>7} {assumed}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
