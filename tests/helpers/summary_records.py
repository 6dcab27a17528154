"""Records, environment and schema that the summary, metric and report tests build from."""

from __future__ import annotations

import json

from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.summary import Environment, ServerSummary

from .suites import REPO

__all__ = ["ENVIRONMENT", "PROMPTS", "SCHEMA", "SEEDS", "paired_record", "records"]

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


def paired_record(
    *,
    suite: str,
    prompt: str,
    config: str,
    seed: int,
    score: float,
    ref: float,
    reference: str = "bf16",
    label: str | None = None,
    prompt_text: str = "t",
    **fields: object,
) -> CaseRecord:
    """A passed case scoring ``score`` whose reference scored ``ref``: the role, the reference
    score and the delta follow from whether ``config`` is ``reference``."""
    is_ref = config == reference
    return CaseRecord(
        suite=suite,
        case_id=f"{prompt}-{config}-s{seed}",
        prompt=prompt,
        prompt_text=prompt_text,
        config=config,
        config_label=label or config.upper(),
        seed=seed,
        reference=reference,
        role="reference" if is_ref else "candidate",
        clipscore=score,
        reference_clipscore=None if is_ref else ref,
        delta=None if is_ref else score - ref,
        outcome="passed",
        **fields,  # type: ignore[arg-type]
    )


def records(drop: float = 0.0) -> list[CaseRecord]:
    out = []
    for prompt, (ref, cand) in PROMPTS.items():
        for seed, offset in SEEDS.items():
            ref_score = ref + offset
            for config, score, seconds in (
                ("base", ref_score, 4.0),
                ("quant", cand + offset - drop, 2.0),
            ):
                out.append(
                    paired_record(
                        suite="s",
                        prompt=prompt,
                        config=config,
                        seed=seed,
                        score=score,
                        ref=ref_score,
                        reference="base",
                        prompt_text=f"text {prompt}",
                        lpips=None if config == "base" else 0.25,
                        server_seconds=seconds + seed * 0.01,
                    )
                )
    return out
