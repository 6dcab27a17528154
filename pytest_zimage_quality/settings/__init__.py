"""Every zimage option in one table, the parsers of its values, and the frozen ``Settings``.

One row of ``OPTIONS`` is the only definition of an option: its command-line flag, ini key,
environment variable, parser (with its range or choices), built-in default and help. The
pytest layer (``options.py``) registers the flags and ini keys from it and reads them in
one order, command line > environment > ini > suite file > default; ``Settings`` takes its
defaults from it; ``suite`` validates the gate parameters of a suite file with the same
ranges. Adding an option is adding one row (and its ``Settings`` field).

Pure core: nothing here imports pytest, so the pipeline below the pytest layer can use
``Settings`` and the scorers can take their defaults from here.
"""

from __future__ import annotations

from ..hosts import SIMULATED_HOST
from ..hosts import HostAddress as HostSpec
from ._option import Option
from ._parsers import (
    MAX_SEED,
    Bounds,
    Choice,
    parse_alpha,
    parse_band,
    parse_band_sd,
    parse_bool,
    parse_clip_floor,
    parse_device,
    parse_header,
    parse_host,
    parse_keys,
    parse_lpips_close,
    parse_lpips_net,
    parse_margin,
    parse_metric_name,
    parse_precision,
    parse_queue_depth,
    parse_recheck,
    parse_score_memory,
    parse_seeds,
    parse_timeout,
    parse_tolerance,
    parse_vram_interval,
    parse_weights,
)
from ._settings import GateParameters, Settings
from ._table import GATE_PARAMETERS, OPTIONS, REMOVED_OPTIONS, default

__all__ = [
    "GATE_PARAMETERS",
    "MAX_SEED",
    "OPTIONS",
    "REMOVED_OPTIONS",
    "SIMULATED_HOST",
    "Bounds",
    "Choice",
    "GateParameters",
    "HostSpec",
    "Option",
    "Settings",
    "default",
    "parse_alpha",
    "parse_band",
    "parse_band_sd",
    "parse_bool",
    "parse_clip_floor",
    "parse_device",
    "parse_header",
    "parse_host",
    "parse_keys",
    "parse_lpips_close",
    "parse_lpips_net",
    "parse_margin",
    "parse_metric_name",
    "parse_precision",
    "parse_queue_depth",
    "parse_recheck",
    "parse_score_memory",
    "parse_seeds",
    "parse_timeout",
    "parse_tolerance",
    "parse_vram_interval",
    "parse_weights",
]
