"""Scorer benchmark: the naive one-at-a-time path against the plugin's resident batched path.

    python benchmarks/scorers.py [--device auto|cpu|cuda|cuda:N] [--n 64] [--json FILE]
    python benchmarks/scorers.py --ocr [--repeats 2] [--image-latency S] [--json FILE]  # OCR cost

Prints, in one run, on 1024x1024 PNG inputs like ComfyUI's (compress level 4):

- one-off setup: imports (torch, torchvision, open_clip, lpips), model build, first call;
- ms per image, PNG bytes -> CLIPScore + LPIPS against the reference image of the pair:
  the naive path (PIL decode, open_clip's own ``preprocess``, ``encode_image`` and
  ``encode_text`` per image, ``lpips.im2tensor`` + ``LPIPS.forward``, strict fp32, one image
  at a time) and the plugin's path, streaming (one at a time) and in batches of 8/16/32;
- compute-only ms per image (decoded tensors) and the deviation from strict fp32 of each
  numeric choice: strict fp32, fp32+TF32 (the default), without channels_last, bf16 autocast;
- the deviation of the plugin's default path from the naive (reference) path.

It runs with random weights (nothing to download): speed does not depend on the weights, and
the exactness numbers are computed on the same code. NOT A QUALITY MEASUREMENT.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PROMPTS = [
    "photorealistic portrait of a young woman in a coffee shop",
    "close-up photo of a vintage mechanical pocket watch with intricate gears",
    "anime style illustration, kimono, cherry blossoms",
    'wooden storefront sign reading "CLOSED FOR REPAIRS"',
    "古風水墨畫,一位身穿青色長袍的書生站在竹林中",
    "surreal floating islands suspended in pastel sky, waterfalls cascading",
]


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_pngs(n: int, size: int, unique: int) -> tuple[list[bytes], list[bytes], list[str]]:
    """``n`` (candidate, reference) PNG pairs of photo-like content; ``unique`` distinct ones."""
    import numpy as np
    from PIL import Image

    def render(seed: int, shift: float) -> bytes:
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        coarse = rng.uniform(0, 255, (size // 64 + 2, size // 64 + 2, 3)).astype(np.uint8)
        base = np.asarray(
            Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC), np.float32
        )
        texture = 30 * np.sin((xx + shift) / 5.0)[..., None] * np.cos((yy - shift) / 7.0)[..., None]
        a = base + texture + rng.normal(0, 6, base.shape).astype(np.float32)
        a[size // 3 : size // 3 + size // 8, size // 5 : 4 * size // 5] = rng.uniform(0, 255, 3)
        buf = io.BytesIO()
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(
            buf, format="PNG", compress_level=4
        )
        return buf.getvalue()

    refs = [render(1000 + i, 0.0) for i in range(unique)]
    cands = [render(2000 + i, 3.0 + i) for i in range(unique)]
    return (
        [cands[i % unique] for i in range(n)],
        [refs[i % unique] for i in range(n)],
        [PROMPTS[i % len(PROMPTS)] for i in range(n)],
    )


def timed(fn: Callable[[], Any], device: Any, repeat: int = 1) -> float:
    """Seconds of the fastest of ``repeat`` runs of ``fn`` (after the caller's warm-up)."""
    best = float("inf")
    for _ in range(repeat):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def naive_path(
    clip: Any, lp: Any, cands: Sequence[bytes], refs: Sequence[bytes], prompts: Sequence[str]
) -> tuple[list[float], list[float]]:
    """What a user writes from the libraries' READMEs: one image at a time, strict fp32."""
    import lpips
    import numpy as np
    from PIL import Image

    from pytest_zimage_quality.scorers import precision_scope

    dev = clip.device
    cs, ds = [], []
    with precision_scope(dev, "fp32"):
        for c, r, p in zip(cands, refs, prompts, strict=True):
            img = Image.open(io.BytesIO(c)).convert("RGB")
            ref = Image.open(io.BytesIO(r)).convert("RGB")
            x = clip.reference_transform(img).unsqueeze(0).to(dev)
            ie = clip.network.encode_image(x)
            te = clip.network.encode_text(clip.tokenizer([p]).to(dev))
            ie = ie / ie.norm(dim=-1, keepdim=True)
            te = te / te.norm(dim=-1, keepdim=True)
            cs.append(float((ie * te).sum()))
            ta = lpips.im2tensor(np.asarray(img)).to(dev)
            tb = lpips.im2tensor(np.asarray(ref)).to(dev)
            ds.append(float(lp.network(ta, tb).reshape(())))
    return cs, ds


def plugin_stream(
    clip: Any,
    lp: Any,
    cands: Sequence[bytes],
    refs: Sequence[bytes],
    prompts: Sequence[str],
    ref_cache: dict[bytes, Any] | None = None,
) -> tuple[list[float], list[float]]:
    """One image at a time. The reference starts decoding in the pool while the candidate is
    decoded and CLIP-scored; each image moves to the device once and serves both scorers.
    With ``ref_cache`` the reference is decoded once and kept on the device, as the plugin's
    scoring stage keeps it for all the configs of a prompt and seed."""
    from pytest_zimage_quality.images import decode_png, submit_decode

    dev = clip.device
    cs, ds = [], []
    for c, r, p in zip(cands, refs, prompts, strict=True):
        pending = None
        if ref_cache is None or r not in ref_cache:
            pending = submit_decode(r)
        cand = decode_png(c).to(dev)
        cs.extend(clip.score([cand], [p]))
        if pending is not None:
            ref = pending.result().to(dev)
            if ref_cache is not None:
                ref_cache[r] = ref
        else:
            assert ref_cache is not None
            ref = ref_cache[r]
        ds.extend(lp.distance([cand], [ref]))
    return cs, ds


def stream_breakdown(
    clip: Any, lp: Any, cands: Sequence[bytes], refs: Sequence[bytes], prompts: Sequence[str]
) -> dict[str, float]:
    """Mean ms per stage of the streaming path (reference on the device), each stage synced."""
    from pytest_zimage_quality.images import decode_png

    dev = clip.device
    refs_dev = {r: decode_png(r).to(dev) for r in set(refs)}
    acc = {"decode": 0.0, "to device": 0.0, "CLIPScore": 0.0, "LPIPS": 0.0}
    for c, r, p in zip(cands, refs, prompts, strict=True):
        t0 = time.perf_counter()
        host = decode_png(c)
        t1 = time.perf_counter()
        cand = host.to(dev)
        _sync(dev)
        t2 = time.perf_counter()
        clip.score([cand], [p])
        t3 = time.perf_counter()
        lp.distance([cand], [refs_dev[r]])
        t4 = time.perf_counter()
        for key, dt in zip(acc, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            acc[key] += dt
    return {k: v / len(cands) * 1e3 for k, v in acc.items()}


def plugin_batched(
    clip: Any,
    lp: Any,
    cands: Sequence[bytes],
    refs: Sequence[bytes],
    prompts: Sequence[str],
    batch: int,
) -> tuple[list[float], list[float]]:
    """Batches of pairs: the next batch decodes in the pool (``iter_decoded``) while this one
    is scored; each image moves to the device once and serves both scorers."""
    from pytest_zimage_quality.images import iter_decoded

    interleaved = [x for pair in zip(cands, refs, strict=True) for x in pair]
    cs, ds = [], []
    for s, imgs in zip(
        range(0, len(cands), batch), iter_decoded(interleaved, 2 * batch), strict=True
    ):
        on_dev = [t.to(clip.device) for t in imgs]
        cs.extend(clip.score(on_dev[0::2], prompts[s : s + batch]))
        ds.extend(lp.distance(on_dev[0::2], on_dev[1::2]))
    return cs, ds


def compute_only(
    clip: Any,
    lp: Any,
    cands: Sequence[Any],
    refs: Sequence[Any],
    prompts: Sequence[str],
    batch: int,
) -> tuple[list[float], list[float]]:
    cs, ds = [], []
    for s in range(0, len(cands), batch):
        cs.extend(clip.score(cands[s : s + batch], prompts[s : s + batch]))
        ds.extend(lp.distance(cands[s : s + batch], refs[s : s + batch]))
    return cs, ds


def set_variant(clip: Any, lp: Any, precision: str, channels_last: bool) -> None:
    import torch

    clip.precision = precision
    lp.precision = precision
    lp.channels_last = channels_last
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    lp.network = lp.network.to(memory_format=fmt)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: auto)")
    ap.add_argument(
        "--n", type=int, default=None, help="images per measurement (default: 64 on CUDA, 8 on CPU)"
    )
    ap.add_argument("--size", type=int, default=1024, help="image side in pixels (1024)")
    ap.add_argument("--batches", default="8,16,32", help="batch sizes (8,16,32)")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument(
        "--ocr",
        action="store_true",
        help="instead: OCR ms per image (CPU; CUDA with onnxruntime-gpu) and a 72-case dry run "
        "with and without OCR (benchmarks/scorer_overhead.py)",
    )
    ap.add_argument("--repeats", type=int, default=2, help="--ocr: dry runs of each kind (2)")
    ap.add_argument(
        "--image-latency",
        type=float,
        default=0.0,
        help="--ocr: 0 (default) runs the in-process simulated fake (CPU-only images); S > 0 "
        "runs the fake as its own server process taking S seconds per image, like a GPU server",
    )
    args = ap.parse_args(argv)
    if args.ocr:
        import scorer_overhead

        figures = scorer_overhead.main(args.repeats, args.image_latency)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
        return 0

    t_imp = time.perf_counter()
    import lpips  # noqa: F401
    import open_clip  # noqa: F401
    import torch
    import torchvision  # noqa: F401

    from pytest_zimage_quality.images import decode_png, decode_pngs
    from pytest_zimage_quality.scorers import CLIPScorer, LPIPSScorer, resolve_device

    imports_s = time.perf_counter() - t_imp
    dev = resolve_device(args.device)
    t_build = time.perf_counter()
    clip = CLIPScorer.load(device=dev, random_weights=True)
    lp = LPIPSScorer.load(device=dev, random_weights=True)
    _sync(dev)
    build_s = time.perf_counter() - t_build

    n = args.n or (64 if dev.type == "cuda" else 8)
    batches = [int(b) for b in args.batches.split(",") if int(b) <= n] or [n]
    cands, refs, prompts = make_pngs(n, args.size, unique=min(n, 16))

    t_first = time.perf_counter()
    plugin_stream(clip, lp, cands[:1], refs[:1], prompts[:1])
    _sync(dev)
    first_s = time.perf_counter() - t_first
    setup_s = imports_s + build_s + first_s

    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    threads = torch.get_num_threads()
    print(
        f"device: {gpu} ({dev}); torch {torch.__version__}; {os.cpu_count()} CPUs, "
        f"torch threads {threads}; {n} pairs of {args.size}x{args.size} PNGs "
        f"({statistics.mean(map(len, cands)) / 1e6:.1f} MB each)"
    )
    print("weights: RANDOM WEIGHTS — NOT A QUALITY MEASUREMENT (speed and exactness only)")
    print(
        f"setup: imports {imports_s:.1f} s + model build {build_s:.1f} s + first call "
        f"{first_s:.1f} s = {setup_s:.1f} s"
    )
    one = timed(lambda: [decode_png(c) for c in cands[:8]], dev) / 8 * 1e3
    two = (
        timed(lambda: [decode_pngs([c, r]) for c, r in zip(cands[:8], refs[:8], strict=True)], dev)
        / 8
        * 1e3
    )
    print(f"PNG decode: {one:.1f} ms per image on one thread; a pair in parallel: {two:.1f} ms")
    c0, r0 = decode_png(cands[0]).to(dev), decode_png(refs[0]).to(dev)
    clip.score([c0], prompts[:1])
    t_c = timed(lambda: clip.score([c0], prompts[:1]), dev, repeat=10) * 1e3
    t_l = timed(lambda: lp.distance([c0], [r0]), dev, repeat=10) * 1e3
    print(f"one image already on the device: CLIPScore {t_c:.1f} ms, LPIPS {t_l:.1f} ms")
    if dev.type == "cuda":
        host = decode_png(cands[0])
        t_page = timed(lambda: host.to(dev), dev, repeat=10) * 1e3
        t_pin = timed(lambda: host.pin_memory().to(dev, non_blocking=True), dev, repeat=10) * 1e3
        print(
            f"one decoded image to the device: {t_page:.2f} ms from pageable memory, "
            f"{t_pin:.2f} ms through pinned memory"
        )

    results: dict[str, Any] = {
        "device": gpu,
        "torch": torch.__version__,
        "n": n,
        "size": args.size,
        "setup_s": {
            "imports": imports_s,
            "build": build_s,
            "first_call": first_s,
            "total": setup_s,
        },
    }

    # ---- end to end, PNG bytes -> both scores ----
    naive_n = min(n, 16 if dev.type == "cuda" else 4)
    naive_path(clip, lp, cands[:1], refs[:1], prompts[:1])  # warm-up
    naive_out: tuple[list[float], list[float]] = ([], [])

    def run_naive() -> None:
        nonlocal naive_out
        naive_out = naive_path(clip, lp, cands[:naive_n], refs[:naive_n], prompts[:naive_n])

    default = "plugin default (strict fp32)"
    rows: list[tuple[str, str, float]] = []
    rows.append(
        (
            "naive: PIL + open_clip preprocess, fp32",
            "1 at a time",
            timed(run_naive, dev) / naive_n * 1e3,
        )
    )
    plugin_stream(clip, lp, cands[:2], refs[:2], prompts[:2])
    rows.append(
        (
            default,
            "streaming, both PNGs decoded",
            timed(lambda: plugin_stream(clip, lp, cands, refs, prompts), dev) / n * 1e3,
        )
    )
    cache: dict[bytes, Any] = {}
    plugin_stream(clip, lp, cands, refs, prompts, cache)  # fills the reference cache
    rows.append(
        (
            default,
            "streaming, reference on device",
            timed(lambda: plugin_stream(clip, lp, cands, refs, prompts, cache), dev) / n * 1e3,
        )
    )
    for b in batches:
        plugin_batched(clip, lp, cands, refs, prompts, b)
        rows.append(
            (
                default,
                f"batches of {b}",
                timed(functools.partial(plugin_batched, clip, lp, cands, refs, prompts, b), dev)
                / n
                * 1e3,
            )
        )
    breakdown = stream_breakdown(clip, lp, cands, refs, prompts)
    default_out = plugin_batched(
        clip, lp, cands[:naive_n], refs[:naive_n], prompts[:naive_n], batches[-1]
    )
    dev_clip = max(abs(a - b) for a, b in zip(default_out[0], naive_out[0], strict=True))
    dev_lpips = max(abs(a - b) for a, b in zip(default_out[1], naive_out[1], strict=True))

    w = max(len(r[0]) for r in rows)
    w2 = max(len(r[1]) for r in rows)
    print(f"\nPNG bytes -> CLIPScore + LPIPS (ms per image; naive over {naive_n} images)")
    print(f"  {'path':<{w}}  {'mode':<{w2}}  {'ms/image':>9}")
    for name, mode, ms in rows:
        print(f"  {name:<{w}}  {mode:<{w2}}  {ms:9.1f}")
    print(
        f"  plugin default vs naive reference: max |dCLIPScore| {dev_clip:.1e}, "
        f"max |dLPIPS| {dev_lpips:.1e}  (bounds: 1e-4, 1e-5)"
    )
    print(
        "  streaming stages (reference on device, each synced): "
        + ", ".join(f"{k} {v:.1f}" for k, v in breakdown.items())
        + " ms"
    )
    results["streaming_stages_ms"] = breakdown
    results["end_to_end_ms_per_image"] = [{"path": p, "mode": m, "ms": ms} for p, m, ms in rows]
    results["default_vs_naive"] = {"clip": dev_clip, "lpips": dev_lpips}

    # ---- compute only: numeric choices ----
    dec_c = decode_pngs(cands)
    dec_r = decode_pngs(refs)
    b = 16 if 16 in batches else batches[-1]
    variants = [
        ("strict fp32, channels_last (default)", "fp32", True),
        ("strict fp32, contiguous", "fp32", False),
        ("fp32+TF32, channels_last", "tf32", True),
        ("fp32+TF32, contiguous", "tf32", False),
        ("bf16 autocast, channels_last", "bf16", True),
    ]
    if dev.type != "cuda":  # no TF32 on a CPU, and bf16 there is slow: the memory format only
        variants = [
            ("fp32, channels_last (default)", "fp32", True),
            ("fp32, contiguous", "fp32", False),
        ]
    strict: tuple[list[float], list[float]] | None = None
    vrows = []
    for name, precision, cl in variants:
        set_variant(clip, lp, precision, cl)
        compute_only(clip, lp, dec_c[:b], dec_r[:b], prompts[:b], b)  # warm-up
        t_clip = timed(
            lambda: [clip.score(dec_c[s : s + b], prompts[s : s + b]) for s in range(0, n, b)],
            dev,
            repeat=3,
        )
        t_lp = timed(
            lambda: [lp.distance(dec_c[s : s + b], dec_r[s : s + b]) for s in range(0, n, b)],
            dev,
            repeat=3,
        )
        out = compute_only(clip, lp, dec_c, dec_r, prompts, b)
        if strict is None:
            strict = out
        dc = max(abs(x - y) for x, y in zip(out[0], strict[0], strict=True))
        dl = max(abs(x - y) for x, y in zip(out[1], strict[1], strict=True))
        rl = max(abs(x - y) / max(abs(y), 1e-12) for x, y in zip(out[1], strict[1], strict=True))
        vrows.append((name, t_clip / n * 1e3, t_lp / n * 1e3, dc, dl, rl))
    set_variant(clip, lp, "fp32", True)

    w = max(len(r[0]) for r in vrows)
    print(
        f"\ncompute only, decoded tensors on the host, batches of {b} "
        "(deviations from the first row)"
    )
    print(
        f"  {'numerics':<{w}}  {'CLIP ms/img':>11}  {'LPIPS ms/pair':>13}  "
        f"{'max|dCLIP|':>10}  {'max|dLPIPS|':>11}  {'rel dLPIPS':>10}"
    )
    for name, tc, tl, dc, dl, rl in vrows:
        print(f"  {name:<{w}}  {tc:11.2f}  {tl:13.2f}  {dc:10.1e}  {dl:11.1e}  {rl:10.1e}")
    print(
        f"\nLegend: ms per image = wall time / images: PNG decode + host-to-device copy + "
        "compute + results back on the host. Streaming: one image at a time, the reference "
        "decoding in the pool while the candidate is decoded and CLIP-scored (or already on "
        "the device, as the plugin keeps it). Batches: decoded in the pool "
        f"({min(16, os.cpu_count() or 1)} threads), the next batch while this one is scored. "
        "Each decoded image moves to the device once and serves both scorers. Compute-only "
        "rows start from decoded host tensors. LPIPS distances here average "
        f"{statistics.mean(strict[1] if strict else [0]):.2f}."
    )
    results["numerics"] = [
        {
            "numerics": r[0],
            "clip_ms": r[1],
            "lpips_ms": r[2],
            "max_dclip": r[3],
            "max_dlpips": r[4],
            "max_rel_dlpips": r[5],
        }
        for r in vrows
    ]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
