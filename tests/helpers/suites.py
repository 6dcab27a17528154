"""Small suites and the example suite, written into a test's temporary directory."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE_SUITE = REPO / "example_suite" / "zimage_turbo.toml"
EXAMPLE_WORKFLOW = REPO / "example_suite" / "z_image_turbo_t2i_api.json"
TRANSCRIPTS = REPO / "tests" / "transcripts"

SMALL_SUITE = """\
[suite]
name = "small"
workflow = "workflow_api.json"
prompt_input = {{ node = "27", input = "text" }}
seed_input = {{ node = "3", input = "seed" }}
reference = "bf16"
seeds = [1, 2, 3]
{suite_extra}

[configs.bf16]
label = "BF16"
overrides."28".unet_name = "z_image_turbo_bf16.safetensors"

[configs.fp8]
label = "FP8"
overrides."28".unet_name = "z_image_turbo_fp8_e4m3fn.safetensors"

[configs.nvfp4]
label = "NVFP4"
overrides."28".unet_name = "z_image_turbo_nvfp4.safetensors"

[[prompts]]
key = "cat"
text = "a photo of a cat on a red sofa"

[[prompts]]
key = "ink"
text = "古風水墨畫,一位身穿青色長袍的書生站在竹林中"

[[prompts]]
key = "sign"
text = 'wooden storefront sign reading "CLOSED FOR REPAIRS"'
{extra}
"""


def small_workflow(size: int = 64) -> dict[str, Any]:
    """The example Z-Image workflow, rendering ``size``² images (fast on a CPU)."""
    graph: dict[str, Any] = json.loads(EXAMPLE_WORKFLOW.read_text(encoding="utf-8"))
    graph["13"]["inputs"]["width"] = size
    graph["13"]["inputs"]["height"] = size
    return graph


def write_small_suite(
    directory: Path,
    *,
    name: str = "zimage_small.toml",
    extra: str = "",
    suite_extra: str = "",
    size: int = 64,
) -> Path:
    """Write a 3 prompts x 3 configs x 3 seeds suite and its workflow into ``directory``."""
    (directory / "workflow_api.json").write_text(json.dumps(small_workflow(size)), encoding="utf-8")
    path = directory / name
    path.write_text(
        SMALL_SUITE.format(extra=textwrap.dedent(extra), suite_extra=textwrap.dedent(suite_extra)),
        encoding="utf-8",
    )
    return path


#: Further prompts for the small suite, one per stress angle of the example suite.
MORE_PROMPTS = (
    ("dog", "a golden retriever running on a beach at sunset"),
    ("clock", "close-up of a brass clock mechanism with tiny screws"),
    ("poster", 'retro travel poster with the word "LISBON" in bold letters'),
    ("robot", "watercolor painting of a small robot watering plants"),
    ("city", "aerial photo of a dense city at night, neon signs"),
    ("tea", "工笔画,一只白鹤站在荷花池边"),
    ("waves", "abstract ribbons of light folding over a dark ocean"),
    ("market", "busy street market with fruit stalls, morning light"),
    ("glass", "macro photo of a dew drop on a blade of grass"),
)


def more_prompts(count: int, *, start: int = 0, stage: int | None = None) -> str:
    """``[[prompts]]`` tables to append to the small suite (its ``extra``): ``count`` more
    prompts from ``MORE_PROMPTS[start:]``, in ``stage`` when given. Three more make the six
    prompts a verdict needs at alpha 0.05 (five at least, docs/statistics.md)."""
    chosen = MORE_PROMPTS[start : start + count]
    assert len(chosen) == count, f"only {len(MORE_PROMPTS)} extra prompts are defined"
    where = f"stage = {stage}\n" if stage is not None else ""
    return "".join(
        f"\n[[prompts]]\nkey = '{key}'\ntext = '{text}'\n{where}" for key, text in chosen
    )


def copy_example_suite(directory: Path) -> Path:
    """A copy of example_suite/ inside ``directory``; returns the suite file."""
    target = directory / "example_suite"
    shutil.copytree(EXAMPLE_SUITE.parent, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target / EXAMPLE_SUITE.name
