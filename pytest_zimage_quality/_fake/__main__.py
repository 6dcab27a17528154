"""Serve the fake ComfyUI as a process: ``python -m pytest_zimage_quality._fake``.

It takes ComfyUI's own ``--listen`` and ``--port`` arguments, so a launcher that starts
``python main.py --listen HOST --port PORT`` starts this instead unchanged (the local
launcher's and the Ray pool's tests do), and serves until SIGTERM or Ctrl-C.

    python -m pytest_zimage_quality._fake --port 8188 --image-latency 1 --load-latency 4
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from .fake import FakeComfyUI


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_zimage_quality._fake",
        description="A fake ComfyUI server (the protocol of ComfyUI 0.18.1) for tests.",
    )
    parser.add_argument("--listen", default="127.0.0.1", metavar="HOST")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--version", default="0.18.1", help="ComfyUI version to emulate")
    parser.add_argument(
        "--device",
        default="cpu",
        help='device name /system_stats reports, e.g. "cuda:0 NVIDIA H200 : cudaMallocAsync"',
    )
    parser.add_argument("--image-latency", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument("--load-latency", type=float, default=0.0, metavar="SECONDS")
    parser.add_argument(
        "--speed-factor",
        type=float,
        default=1.0,
        metavar="X",
        help="multiplies --image-latency (one server of a pool slower than the others)",
    )
    parser.add_argument(
        "--models",
        type=Path,
        metavar="JSON",
        help="a JSON file mapping model folders to file names (default: the example suite's)",
    )
    parser.add_argument("--cpu", action="store_true", help="accepted, as ComfyUI does")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    models = None
    if args.models is not None:
        try:
            models = json.loads(args.models.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            print(f"cannot read --models {args.models}: {exc}", file=sys.stderr)
            return 2
    fake = FakeComfyUI(
        models=models,
        version=args.version,
        device=args.device,
        image_latency=args.image_latency,
        load_latency=args.load_latency,
        speed_factor=args.speed_factor,
        host=args.listen,
        port=args.port,
    )
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    fake.start()
    print(f"fake ComfyUI {args.version} serving on {fake.url}", flush=True)
    while not stop.wait(0.5):
        pass
    fake.stop(check=False)
    print("fake ComfyUI stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
