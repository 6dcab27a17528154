"""Throughput: the plugin against a naive harness, on the fake ComfyUI's simulated clock.

    python benchmarks/throughput.py                      # L=1 s per image, M=4 s per model load
    python benchmarks/throughput.py --latency 2 --load 10 --size 512

Runs the example suite (72 cases: 6 prompts x 4 configs x 3 seeds) against a fresh fake
ComfyUI per run, whose worker sleeps ``L`` seconds per image and ``M`` seconds whenever the
loaded model files change, and prints, side by side from this one run:

- the plugin (``pytest example_suite --zimage-host=<fake>``, real open_clip and lpips code
  with random weights, on the CPU), cold, with tests shuffled, and warm reruns (nothing
  changed; only the candidate configs' model files changed);
- a naive harness: submit, wait, fetch, score, one case at a time, in collection order.

For each: wall time (pytest session start to end for the plugin, first to last case for the
harness) divided by the ideal ``generated*L + loads*M``, the server's model loads and
generations, and the share of the wall time the server sat idle. Targets (issue 7): plugin
wall <= 1.05 x ideal, 4 model loads, idle <= 3%; warm reruns generate 54 and 0 images.
Images are rendered at ``--size`` (default 256) and L defaults to 1 s so that CPU scoring
(about 0.35 s per image for CLIP ViT-B-32 plus LPIPS on one core) keeps pace with the
simulated GPU, as a GPU scorer (36 ms) keeps pace with real 5-8 s generations; the workflow is
otherwise the example's. Torch runs one thread per process, leaving a core to the server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_suite"
CANDIDATE_FILES = (
    "z_image_turbo_fp8_e4m3fn.safetensors",
    "z_image_turbo_nvfp4.safetensors",
    "qwen_3_4b_fp8_mixed.safetensors",
)

TIMING_CONFTEST = """
import json, os, random, time
from pathlib import Path

import pytest

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    seed = os.environ.get("ZIMAGE_BENCH_SHUFFLE")
    if seed:  # run the tests in a shuffled order, as pytest-randomly would
        random.Random(int(seed)).shuffle(items)

def pytest_sessionstart(session):
    session.config._bench_start = time.monotonic()

def pytest_sessionfinish(session):
    Path("timing.json").write_text(json.dumps({"start": session.config._bench_start, "end": time.monotonic()}))
"""


@dataclass
class Row:
    name: str
    wall: float
    ideal: float
    loads: int
    generated: int
    idle: float
    note: str = ""


def make_project(root: Path, size: int) -> Path:
    project = root / "project"
    shutil.copytree(
        EXAMPLE, project / "example_suite", ignore=shutil.ignore_patterns("__pycache__")
    )
    workflow = project / "example_suite" / "z_image_turbo_t2i_api.json"
    graph = json.loads(workflow.read_text(encoding="utf-8"))
    graph["13"]["inputs"]["width"] = size
    graph["13"]["inputs"]["height"] = size
    workflow.write_text(json.dumps(graph), encoding="utf-8")
    (project / "conftest.py").write_text(TIMING_CONFTEST, encoding="utf-8")
    return project


def new_fake(args: argparse.Namespace, *, changed: bool = False) -> Any:
    from pytest_zimage_quality.testing import FakeComfyUI

    fake = FakeComfyUI(image_latency=args.latency, load_latency=args.load)
    fake.start()
    if changed:
        for name in CANDIDATE_FILES:
            fake.replace_model_file(name)
    return fake


def plugin_run(
    name: str,
    args: argparse.Namespace,
    project: Path,
    cache: Path,
    *,
    shuffle: bool = False,
    changed: bool = False,
    note: str = "",
) -> Row:
    fake = new_fake(args, changed=changed)
    report = project / "report"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "example_suite",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        f"--zimage-host={fake.url}",
        "--zimage-weights=random",
        f"--zimage-device={args.device}",
        f"--zimage-cache-dir={cache}",
        f"--zimage-report-dir={report}",
        f"--zimage-queue-depth={args.depth}",
        "--zimage-inconclusive=pass",
    ]
    command += ["-p", "no:randomly"]
    env = {**os.environ, "ZIMAGE_BENCH_SHUFFLE": "2024" if shuffle else ""}
    (project / "timing.json").unlink(missing_ok=True)
    before_loads, before_gen = fake.model_loads, fake.generations
    started = time.monotonic()
    proc = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, check=False
    )
    process_wall = time.monotonic() - started
    fake.stop()
    if proc.returncode not in (0, 1) or not (project / "timing.json").exists():
        sys.exit(
            f"{name}: pytest exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    timing = json.loads((project / "timing.json").read_text())
    wall = timing["end"] - timing["start"]
    loads = fake.model_loads - before_loads
    generated = fake.generations - before_gen
    busy = fake.busy_time(timing["start"], timing["end"], kinds=("run", "load"))
    return Row(
        name,
        wall,
        generated * args.latency + loads * args.load,
        loads,
        generated,
        1.0 - busy / wall if wall else 0.0,
        note or f"process {process_wall:.1f} s incl. imports",
    )


def naive_run(args: argparse.Namespace, project: Path) -> Row:
    """Submit, wait, fetch, score; one case at a time, in collection order."""
    from pytest_zimage_quality.comfyui import ComfyUIClient
    from pytest_zimage_quality.images import decode_png
    from pytest_zimage_quality.scorers import CLIPScorer, LPIPSScorer
    from pytest_zimage_quality.suite import load_suite

    suite = load_suite(project / "example_suite" / "zimage_turbo.toml")
    clip = CLIPScorer.load(random_weights=True, device=args.device)
    lpips = LPIPSScorer.load(random_weights=True, device=args.device)
    fake = new_fake(args)
    client = ComfyUIClient(fake.url)
    client.connect()
    references: dict[tuple[str, int], Any] = {}
    start = time.monotonic()
    for case in suite.cases():
        graph = suite.graph_for(case, prefix=f"naive/{case.id}")
        generation = client.generate(graph, output_node=suite.output_node)
        image = decode_png(generation.png)
        clip.score([image], [case.prompt.text])
        if case.is_reference:
            references[(case.prompt.key, case.seed)] = image
        else:
            lpips.distance([image], [references[(case.prompt.key, case.seed)]])
    end = time.monotonic()
    client.close()
    busy = fake.busy_time(start, end, kinds=("run", "load"))
    row = Row(
        "naive harness",
        end - start,
        fake.generations * args.latency + fake.model_loads * args.load,
        fake.model_loads,
        fake.generations,
        1.0 - busy / (end - start),
        "submit/wait/fetch/score per case",
    )
    fake.stop()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency", type=float, default=1.0, help="L: seconds per image (default 1)"
    )
    parser.add_argument(
        "--load", type=float, default=4.0, help="M: seconds per model load (default 4)"
    )
    parser.add_argument(
        "--size", type=int, default=256, help="image width and height (default 256)"
    )
    parser.add_argument("--depth", type=int, default=2, help="--zimage-queue-depth (default 2)")
    parser.add_argument(
        "--device", default="cpu", help="scorer device: cpu (default), cuda, cuda:N"
    )
    args = parser.parse_args()
    if args.device == "cpu":
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # leave a core to the simulated server
    with tempfile.TemporaryDirectory(prefix="zimage-bench-") as tmp:
        root = Path(tmp)
        project = make_project(root, args.size)
        cache = root / "cache"
        rows = [
            plugin_run("plugin, cold", args, project, cache),
            plugin_run("plugin, warm, nothing changed", args, project, cache),
            plugin_run("plugin, warm, candidates changed", args, project, cache, changed=True),
            plugin_run("plugin, cold, shuffled", args, project, root / "cache2", shuffle=True),
            naive_run(args, project),
        ]
    print(
        f"\nexample suite, 72 cases at {args.size}x{args.size}; L = {args.latency:g} s/image, "
        f"M = {args.load:g} s/model load, queue depth {args.depth}; scorers on {args.device}; {os.cpu_count()} CPUs\n"
    )
    header = f"{'run':<34} {'wall s':>7} {'ideal s':>8} {'wall/ideal':>10} {'loads':>6} {'generated':>9} {'server idle':>11}  note"
    print(header)
    print("-" * len(header))
    for row in rows:
        ratio = f"{row.wall / row.ideal:.3f}" if row.ideal else "—"
        print(
            f"{row.name:<34} {row.wall:7.1f} {row.ideal:8.1f} {ratio:>10} {row.loads:6d} {row.generated:9d} "
            f"{row.idle * 100:10.1f}%  {row.note}"
        )
    cold, naive = rows[0], rows[-1]
    print(
        f"\nplugin vs naive: {naive.wall / cold.wall:.2f}x faster; "
        f"targets: wall/ideal <= 1.05 ({cold.wall / cold.ideal:.3f}), loads == 4 ({cold.loads}), "
        f"idle <= 3% ({cold.idle * 100:.1f}%), warm reruns generate 0 ({rows[1].generated}) "
        f"and 54 ({rows[2].generated})"
    )


if __name__ == "__main__":
    main()
