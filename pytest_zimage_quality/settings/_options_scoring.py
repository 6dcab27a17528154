"""The options of scoring (device, weights, precision, models), of the image cache and the
time limits, and of what the run writes (report directory, baseline, history, recheck, VRAM,
exit status, gate metric, Markdown). One ``Option`` row each, in ``--help`` order."""

from __future__ import annotations

from ._option import Option
from ._parsers import (
    parse_bool,
    parse_device,
    parse_lpips_net,
    parse_metric_name,
    parse_precision,
    parse_queue_depth,
    parse_recheck,
    parse_score_memory,
    parse_timeout,
    parse_vram_interval,
    parse_weights,
)

__all__ = ["SCORING_OPTIONS"]

SCORING_OPTIONS: tuple[Option, ...] = (
    Option(
        "device",
        parse_device,
        "scorer device: auto (first CUDA GPU, else CPU), cpu, cuda, cuda:N.",
        "DEVICE",
        default="auto",
    ),
    Option(
        "weights",
        parse_weights,
        "scorer weights; 'random' initialises the networks randomly (dry runs and tests: "
        "NOT a quality measurement).",
        "pretrained|random",
        default="pretrained",
    ),
    Option(
        "precision",
        parse_precision,
        "scorer numerics: fp32 is exact to the libraries' own paths (docs/scorers.md: TF32 "
        "and bf16 move the scores measurably).",
        "fp32|tf32|bf16",
        default="fp32",
    ),
    Option("clip_model", str, "open_clip model name.", "NAME", default="ViT-B-32"),
    Option(
        "clip_pretrained",
        str,
        "open_clip pretrained tag, or a local weights file.",
        "TAG|FILE",
        # LAION-2B, trained with the standard GELU that ViT-B-32 builds. (OpenAI's
        # weights need QuickGELU: model ViT-B-32-quickgelu with tag openai.)
        default="laion2b_s34b_b79k",
    ),
    Option("lpips_net", parse_lpips_net, "LPIPS trunk network.", "alex|vgg", default="alex"),
    Option(
        "lpips_weights",
        str,
        "local file of the LPIPS trunk's ImageNet weights.",
        "FILE",
        default_text="torchvision's cache under $TORCH_HOME",
        kind="path",
    ),
    Option(
        "score_memory",
        parse_score_memory,
        "memory budget of one scorer call on the scorers' device (GPU or CPU), in MiB: "
        "scoring batches are split so that each metric's estimated working memory stays "
        "within it (at least one image per call; docs/reliability.md).",
        "MIB",
        default=256,
    ),
    Option(
        "report_dir",
        str,
        "where results.jsonl, summary.json, report.html and images go.",
        "DIR",
        default_text="zimage/report under pytest's cache dir",
        kind="path",
    ),
    Option(
        "cache_dir",
        str,
        "content-addressed image cache.",
        "DIR",
        default_text="zimage/images under pytest's cache dir",
        kind="path",
    ),
    Option(
        "refresh",
        parse_bool,
        "ignore cached images and make the server run every graph again.",
        default=False,
        kind="switch",
    ),
    Option(
        "revision",
        str,
        "free text folded into the image cache key (bump it when a model file changes in place).",
        "TEXT",
        default_text="the suite's revision",
        in_suite=True,
    ),
    Option(
        "timeout",
        parse_timeout,
        "longest wait for one generation.",
        "SECONDS",
        default=600.0,
    ),
    Option(
        "queue_depth",
        parse_queue_depth,
        "how many of this run's prompts to keep queued on the server.",
        "N",
        default=2,
    ),
    Option(
        "baseline",
        str,
        "a previous run's summary.json or report directory (e.g. main's last green run's "
        "report artifact): show each config's and prompt's change since then and label each "
        "failure new, inherited or no baseline.",
        "PATH",
        default_text="none",
        kind="path",
    ),
    Option(
        "history",
        str,
        "a directory of stored runs' summary.json files: report.html charts each config's "
        "Δ and verdict across them, and the run stores its own summary.json there.",
        "DIR",
        default_text="none",
        kind="path",
    ),
    Option(
        "baseline_any_lane",
        parse_bool,
        "compare with a baseline from another lane (GPU, ComfyUI, torch, CUDA) anyway; by "
        "default such a baseline is refused, its images not being comparable.",
        default=False,
        kind="switch",
    ),
    Option(
        "recheck",
        parse_recheck,
        "the determinism check: regenerate N reference cases the image cache holds "
        "(the same N every run, chosen by their ids' hash) and compare them with the cached "
        "images: the measured noise floor, shown next to the margin δ (--zimage-refresh "
        "checks every cached image).",
        "N",
        default=0,
    ),
    Option(
        "vram_interval",
        parse_vram_interval,
        "seconds between samples of each server's VRAM (GET /system_stats) while it "
        "generates, for the peak VRAM per config beside the speedup; 0 turns sampling off.",
        "SECONDS",
        default=0.25,
    ),
    Option(
        "infra_exit_status",
        parse_bool,
        "exit with status 75 (EX_TEMPFAIL) when the only problems were infrastructure "
        "errors (host unreachable, server error, timeout, corrupt image): no quality failure "
        "and no config judged worse, so CI can retry the run instead of blocking the change.",
        default=False,
        kind="switch",
    ),
    Option(
        "gate_metric",
        parse_metric_name,
        "the metric each candidate config is gated on (non-inferior to the reference): "
        "clipscore, text_accuracy or a registered scorer's name; it must compare an image "
        "with its prompt, not with the reference image (docs/metrics.md).",
        "NAME",
        default="clipscore",
        in_suite=True,
    ),
    Option(
        "markdown",
        str,
        "also write the run's summary as Markdown (verdicts, per-prompt table, worst cases, "
        "provenance) to this file, for a pull request.",
        "PATH",
        default_text="none",
        kind="path",
    ),
    Option(
        "step_summary",
        parse_bool,
        "append the Markdown summary to $GITHUB_STEP_SUMMARY when GitHub Actions sets it.",
        "yes|no",
        default=True,
    ),
)
