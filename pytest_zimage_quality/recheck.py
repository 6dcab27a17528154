"""The determinism check's pipeline side: which reference cases to regenerate, and the
scores of each (cached, regenerated) pair that differs.

``--zimage-refresh`` regenerates every image; ``--zimage-recheck N`` regenerates N reference
cases the cache holds, chosen by the hash of their ids (the same N in every run of a suite,
whatever the order). A pair with the same bytes needs no scoring (its noise is exactly 0);
a pair that differs gets LPIPS(cached, regenerated) and the CLIPScore of the cached image,
from the run's own metric specs, so :mod:`.noise_floor` can measure the floor.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .images import decode_png
from .metrics import PromptInfo, ScoreBatch, ScorerSpec, read_result
from .noise_floor import RecheckPair

__all__ = ["Regenerated", "choose_recheck", "score_pairs"]

log = logging.getLogger(__name__)


def choose_recheck(case_ids: Iterable[str], n: int) -> set[str]:
    """``n`` of ``case_ids``, chosen deterministically by the sha256 of each id."""
    if n <= 0:
        return set()
    ordered = sorted(set(case_ids), key=lambda c: hashlib.sha256(c.encode("utf-8")).hexdigest())
    return set(ordered[:n])


@dataclass(frozen=True)
class Regenerated:
    """A case regenerated although the cache held it: both images, the new CLIPScore."""

    case_id: str
    prompt: PromptInfo
    cached_png: bytes
    cached_sha256: str
    new_png: bytes
    new_sha256: str
    new_clipscore: float | None


def _on(spec: ScorerSpec, tensor: Any) -> Any:
    move = getattr(tensor, "to", None)
    if move is None or not spec.device:
        return tensor
    try:
        return move(spec.device)
    except (TypeError, RuntimeError):
        return tensor


def _score(spec: ScorerSpec | None, batch: ScoreBatch) -> float | None:
    if spec is None:
        return None
    try:
        values, _ = read_result(spec, spec.score(batch), len(batch))
    except Exception as exc:  # a pair that cannot be scored is counted as unmeasured
        log.warning("zimage: the noise floor could not score %s: %s", batch.keys, exc)
        return None
    return float(values[0])


def score_pairs(items: Sequence[Regenerated], specs: Sequence[ScorerSpec]) -> list[RecheckPair]:
    """One :class:`RecheckPair` per regenerated case; differing pairs scored by ``specs``'
    ``clipscore`` and ``lpips`` (None where a spec is missing or fails: unmeasured)."""
    by_name = {spec.name: spec for spec in specs}
    clip, lpips = by_name.get("clipscore"), by_name.get("lpips")
    pairs = []
    for item in items:
        pair = RecheckPair(item.case_id, item.cached_sha256, item.new_sha256)
        if pair.identical:
            pairs.append(pair)
            continue
        cached = decode_png(item.cached_png, label=f"{item.case_id} (cached)")
        new = decode_png(item.new_png, label=f"{item.case_id} (regenerated)")
        key = f"{item.case_id}#cached"
        clip_batch = (
            ScoreBatch([_on(clip, cached)], [item.prompt], [key]) if clip is not None else None
        )
        lpips_batch = (
            ScoreBatch(
                [_on(lpips, new)],
                [item.prompt],
                [f"{item.case_id}#regenerated"],
                references=[_on(lpips, cached)],
                reference_keys=[key],
            )
            if lpips is not None
            else None
        )
        pairs.append(
            RecheckPair(
                item.case_id,
                item.cached_sha256,
                item.new_sha256,
                lpips=_score(lpips, lpips_batch) if lpips_batch is not None else None,
                cached_clipscore=_score(clip, clip_batch) if clip_batch is not None else None,
                new_clipscore=item.new_clipscore,
            )
        )
    return pairs
