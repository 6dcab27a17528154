"""Records with a further metric (text accuracy) beside CLIPScore, for the gated-metric tests."""

from __future__ import annotations

from pytest_zimage_quality.metrics import REFERENCE_FREE, MetricInfo
from pytest_zimage_quality.records import CaseRecord

__all__ = ["CLIP", "GATED_PROMPTS", "TEXT", "gated_records"]

CLIP = MetricInfo("clipscore", "CLIPScore", REFERENCE_FREE, True)
TEXT = MetricInfo("text_accuracy", "Text acc.", REFERENCE_FREE, True)
#: the small suite's three prompts + more_prompts(3)
GATED_PROMPTS = ["cat", "ink", "sign", "dog", "clock", "poster"]


def gated_records(suite: str, *, text_drop: float, clip_noise: float = 0.001) -> list[CaseRecord]:
    """Six prompts × 3 seeds × (BF16, FP8): CLIPScore unchanged up to noise, text accuracy
    dropping by ``text_drop`` on every prompt (FP8), with a little spread."""
    out = []
    for i, prompt in enumerate(GATED_PROMPTS):
        for seed in (1, 2, 3):
            wobble = ((i * 3 + seed) % 5 - 2) / 2 * clip_noise
            ref_clip, ref_text = 0.30 + 0.01 * i, 0.9 - 0.01 * seed
            for config in ("bf16", "fp8"):
                is_ref = config == "bf16"
                clip = ref_clip if is_ref else ref_clip + wobble
                text = ref_text if is_ref else ref_text - text_drop + wobble
                out.append(
                    CaseRecord(
                        suite=suite, case_id=f"{prompt}-{config}-s{seed}", prompt=prompt,
                        prompt_text=prompt, config=config, config_label=config.upper(),
                        seed=seed, reference="bf16", role="reference" if is_ref else "candidate",
                        clipscore=clip, reference_clipscore=None if is_ref else ref_clip,
                        delta=None if is_ref else clip - ref_clip,
                        metrics={"clipscore": clip, "text_accuracy": text},
                        reference_metrics={} if is_ref else {
                            "clipscore": ref_clip, "text_accuracy": ref_text},
                        outcome="passed",
                    )
                )  # fmt: skip
    return out
