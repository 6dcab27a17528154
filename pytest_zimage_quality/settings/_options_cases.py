"""The options that choose a run's cases and the hosts they run on, and how the gate judges
them (tolerance, margin, alpha, band, stages, advisory). One ``Option`` row each; ``OPTIONS``
in ``settings`` joins the row modules in this order (it is the order of ``--help``)."""

from __future__ import annotations

from ._option import Option
from ._parsers import (
    parse_alpha,
    parse_band,
    parse_band_sd,
    parse_bool,
    parse_clip_floor,
    parse_header,
    parse_host,
    parse_keys,
    parse_lpips_close,
    parse_margin,
    parse_seeds,
    parse_tolerance,
)

__all__ = ["CASE_OPTIONS"]

CASE_OPTIONS: tuple[Option, ...] = (
    Option(
        "hosts",
        parse_host,
        "ComfyUI host to generate on: host:port, http(s)://host:port, or 'simulated' "
        "for the built-in fake server (dry run). Repeatable. Also $ZIMAGE_HOST.",
        "HOST",
        default=(),
        default_text="none (the zimage cases are skipped)",
        kind="list",
        flag="--zimage-host",
        ini="zimage_host",
        env="ZIMAGE_HOST",
    ),
    Option(
        "headers",
        parse_header,
        "extra HTTP header for an authenticated host; values are never printed. Repeatable.",
        "'NAME: VALUE'",
        default=(),
        default_text="none",
        kind="list",
        flag="--zimage-header",
        ini="zimage_headers",
    ),
    Option(
        "suite_path",
        str,
        "suite file whose cases parametrize Python tests that use the zimage_case fixture.",
        "PATH",
        default_text="none",
        kind="path",
        flag="--zimage-suite",
        ini="zimage_suite",
    ),
    Option(
        "configs",
        parse_keys,
        "run only these configs (comma-separated keys); the reference is still generated "
        "where candidates need it.",
        "KEYS",
        default_text="every config",
    ),
    Option("prompts", parse_keys, "run only these prompts.", "KEYS", default_text="every prompt"),
    Option(
        "seeds",
        parse_seeds,
        "use these seeds instead of the suite's (comma-separated).",
        "SEEDS",
        default_text="the suite file's",
        in_suite=True,
    ),
    Option(
        "tolerance",
        parse_tolerance,
        "per-case: fail when CLIPScore < reference - DELTA.",
        "DELTA",
        default=0.04,
        in_suite=True,
    ),
    Option(
        "margin",
        parse_margin,
        "per-config non-inferiority margin on the mean CLIPScore drop.",
        "DELTA",
        default=0.01,
        in_suite=True,
    ),
    Option(
        "alpha",
        parse_alpha,
        "one-sided level of the per-config gate.",
        "ALPHA",
        default=0.05,
        in_suite=True,
    ),
    Option(
        "clip_floor",
        parse_clip_floor,
        "lowest CLIPScore a reference image may have.",
        "SCORE",
        default=0.20,
        in_suite=True,
    ),
    Option(
        "lpips_close",
        parse_lpips_close,
        "mean LPIPS below which a config counts as 'close' to the reference.",
        "DIST",
        default=0.20,
    ),
    Option(
        "per_prompt_gate",
        parse_bool,
        "also fail the run when a prompt's corrected per-prompt test flags a drop.",
        default=False,
        kind="switch",
    ),
    Option(
        "advisory",
        parse_bool,
        "compute and show the gate, labelled ADVISORY in every output, but never let its "
        "verdict set the exit status (the per-case tests still do).",
        default=False,
        kind="switch",
    ),
    Option(
        "band",
        parse_band,
        "per-case band: 'scaled' widens the tolerance with the number of candidate cases so "
        "a healthy run fails no case with probability >= 0.95; 'fixed' is the tolerance alone.",
        "scaled|fixed",
        default="scaled",
    ),
    Option(
        "band_sd",
        parse_band_sd,
        "image-level SD of the paired CLIPScore difference the scaled band tolerates.",
        "SD",
        default=0.02,
    ),
    Option(
        "prior",
        str,
        "a previous run's summary.json: its observed spreads plan this run's power "
        "(instead of the suite file's [suite.prior] or the study's defaults).",
        "FILE",
        default_text="the suite file's [suite.prior], else the study's defaults",
        kind="path",
    ),
    Option(
        "plan",
        parse_bool,
        "print each suite's power plan and per-case band, then exit without generating "
        "anything (no server needed).",
        default=False,
        kind="switch",
    ),
    Option(
        "xfail_strict",
        parse_bool,
        "expected-fail cases that pass fail the run (a suite's strict = ... wins).",
        default=False,
        default_text="pytest's xfail_strict",
        flag=None,
        ini_fallback="xfail_strict",
    ),
)
