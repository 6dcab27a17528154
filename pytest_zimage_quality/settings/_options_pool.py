"""The options of the server pool a run reads (a hosts file) or starts itself (ComfyUI on
local GPUs or CPUs, a Ray cluster). One ``Option`` row each, in ``--help`` order."""

from __future__ import annotations

from ._option import Option
from ._parsers import (
    parse_arguments,
    parse_comfyui,
    parse_cpu_servers,
    parse_gpus,
    parse_pin_pairs,
    parse_ray_servers,
    parse_timeout,
)

__all__ = ["POOL_OPTIONS"]

POOL_OPTIONS: tuple[Option, ...] = (
    Option(
        "hosts_file",
        str,
        "file listing more ComfyUI hosts for the pool, one per line ('#' comments).",
        "FILE",
        default_text="none",
        kind="path",
    ),
    Option(
        "comfyui",
        parse_comfyui,
        "start one ComfyUI server per local GPU from this installation (its main.py or "
        "folder) and add them to the pool; 'fake' starts the built-in fake server instead.",
        "PATH|fake",
        default_text="none",
    ),
    Option(
        "gpus",
        parse_gpus,
        "the GPUs to start servers on (comma-separated indices or UUIDs), or 'all'.",
        "IDS|all",
        default_text="all visible GPUs",
        env="ZIMAGE_GPUS",
    ),
    Option(
        "cpu_servers",
        parse_cpu_servers,
        "servers to start without a GPU when none is found (ComfyUI --cpu).",
        "N",
        default=0,
    ),
    Option(
        "comfyui_args",
        parse_arguments,
        "extra arguments for each started ComfyUI server (shell syntax).",
        "ARGS",
        default=(),
        default_text="none",
    ),
    Option(
        "launch_timeout",
        parse_timeout,
        "longest wait for a started server to answer.",
        "SECONDS",
        default=300.0,
    ),
    Option(
        "ray",
        str,
        "start one ComfyUI server per GPU of a Ray cluster: 'auto' (this machine's "
        "cluster), 'local' (a one-machine cluster) or its address; needs --zimage-comfyui "
        "and the [ray] extra.",
        "auto|local|ADDRESS",
        default_text="none",
    ),
    Option(
        "ray_servers",
        parse_ray_servers,
        "how many servers to start on the Ray cluster.",
        "N",
        default_text="one per cluster GPU",
    ),
    Option(
        "pin_pairs",
        parse_pin_pairs,
        "keep each (prompt, seed) on one server: 'auto' where the determinism check finds "
        "servers of one hardware class drawing different images, 'always' or 'never'.",
        "auto|always|never",
        default="auto",
    ),
)
