"""Records, environment and schema that the summary, metric and report tests build from."""

from __future__ import annotations

import json

from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.summary import Environment, ServerSummary

from .suites import REPO

__all__ = ["ENVIRONMENT", "PROMPTS", "SCHEMA", "SEEDS", "records"]

SCHEMA = json.loads((REPO / "docs" / "summary.schema.json").read_text(encoding="utf-8"))
ENVIRONMENT = Environment(
    plugin_version="0.1.0",
    python="3.12.1",
    platform="Linux",
    pytest="8.3.0",
    torch=None,
    device="cpu",
    servers=(ServerSummary(url="http://gpu:8188", comfyui_version="0.3.64", gpu_name="GB10"),),
)
#: per prompt: (reference, candidate) CLIPScore means; seeds add these offsets to both
#: (six prompts: a monotone verdict at alpha 0.05 needs at least five)
PROMPTS = {
    "a": (0.30, 0.301),
    "b": (0.32, 0.318),
    "c": (0.28, 0.281),
    "d": (0.35, 0.352),
    "e": (0.31, 0.311),
    "f": (0.33, 0.329),
}
SEEDS = {1: -0.002, 2: 0.0, 3: 0.002}


def records(drop: float = 0.0) -> list[CaseRecord]:
    out = []
    for prompt, (ref, cand) in PROMPTS.items():
        for seed, offset in SEEDS.items():
            ref_score = ref + offset
            for config, score, seconds in (
                ("base", ref_score, 4.0),
                ("quant", cand + offset - drop, 2.0),
            ):
                is_ref = config == "base"
                out.append(
                    CaseRecord(
                        suite="s",
                        case_id=f"{prompt}-{config}-s{seed}",
                        prompt=prompt,
                        prompt_text=f"text {prompt}",
                        config=config,
                        config_label=config.upper(),
                        seed=seed,
                        reference="base",
                        role="reference" if is_ref else "candidate",
                        clipscore=score,
                        reference_clipscore=None if is_ref else ref_score,
                        delta=None if is_ref else score - ref_score,
                        lpips=None if is_ref else 0.25,
                        server_seconds=seconds + seed * 0.01,
                        outcome="passed",
                    )
                )
    return out
