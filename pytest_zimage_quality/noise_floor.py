"""The determinism check: how far a regenerated image drifts from the one the cache holds.

When a run regenerates images the cache already has (``--zimage-refresh``, or a recheck of a
sample of reference cases), each (cached, regenerated) pair is compared by hash. A server
that is deterministic on its lane returns the same bytes, and the noise floor is exactly 0.
For a pair that differs, LPIPS between the two and the change of CLIPScore measure the
re-run noise: a gate whose margin δ is below that noise judges the sampler's jitter, not the
config (Comfy-Org's GPU CI loosens its thresholds to 3× the measured re-run noise).

The floor is the largest absolute CLIPScore change among the pairs (0 when every pair is
bit-identical). The margin is compared with it: below it, a warning.

Pure: numbers in, a frozen result out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["NoiseFloor", "RecheckPair", "margin_warning", "measure_noise_floor"]


@dataclass(frozen=True)
class RecheckPair:
    """A case whose image was regenerated although the cache held it."""

    case_id: str
    cached_sha256: str
    new_sha256: str
    #: LPIPS(cached, regenerated); None when not scored (identical pairs need no scoring)
    lpips: float | None = None
    cached_clipscore: float | None = None
    new_clipscore: float | None = None

    @property
    def identical(self) -> bool:
        return self.cached_sha256 == self.new_sha256

    @property
    def clip_change(self) -> float | None:
        """|CLIPScore(regenerated) − CLIPScore(cached)|: 0 for identical bytes."""
        if self.identical:
            return 0.0
        if self.cached_clipscore is None or self.new_clipscore is None:
            return None
        change = abs(self.new_clipscore - self.cached_clipscore)
        return change if math.isfinite(change) else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "identical": self.identical,
            "cached_sha256": self.cached_sha256,
            "new_sha256": self.new_sha256,
            "lpips": 0.0 if self.identical else self.lpips,
            "clip_change": self.clip_change,
        }


@dataclass(frozen=True)
class NoiseFloor:
    """summary.json's ``noise_floor`` block."""

    n_pairs: int
    n_identical: int
    #: pairs that differ but could not be scored: the floor is then a lower bound
    n_unmeasured: int
    #: max |ΔCLIPScore| over the pairs; None when no pair was rechecked
    clip_floor: float | None
    clip_mean_change: float | None
    lpips_max: float | None
    pairs: tuple[RecheckPair, ...]

    @property
    def deterministic(self) -> bool:
        return self.n_pairs > 0 and self.n_identical == self.n_pairs

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_pairs": self.n_pairs,
            "n_identical": self.n_identical,
            "n_unmeasured": self.n_unmeasured,
            "deterministic": self.deterministic,
            "clip_floor": self.clip_floor,
            "clip_mean_change": self.clip_mean_change,
            "lpips_max": self.lpips_max,
            "pairs": [p.to_dict() for p in self.pairs if not p.identical],
        }


def measure_noise_floor(pairs: Iterable[RecheckPair]) -> NoiseFloor:
    """The floor from the rechecked pairs (see the module docstring)."""
    rows = tuple(pairs)
    changes = [c for c in (p.clip_change for p in rows) if c is not None]
    lpips = [0.0 if p.identical else p.lpips for p in rows]
    lpips_known = [v for v in lpips if v is not None and math.isfinite(v)]
    return NoiseFloor(
        n_pairs=len(rows),
        n_identical=sum(p.identical for p in rows),
        n_unmeasured=sum(p.clip_change is None for p in rows),
        clip_floor=max(changes) if changes else None,
        clip_mean_change=statistics.fmean(changes) if changes else None,
        lpips_max=max(lpips_known) if lpips_known else None,
        pairs=rows,
    )


def margin_warning(floor: NoiseFloor, margin: float) -> str | None:
    """A warning when the gate's margin δ is not above the measured re-run noise."""
    if floor.clip_floor is None:
        return None
    partial = (
        f" ({floor.n_unmeasured} differing pair(s) could not be scored: the floor may be higher)"
        if floor.n_unmeasured
        else ""
    )
    if margin <= floor.clip_floor:
        return (
            f"margin δ = {margin:g} is not above the measured noise floor "
            f"{floor.clip_floor:.4f} (largest CLIPScore change of a regenerated image, "
            f"{floor.n_pairs - floor.n_identical} of {floor.n_pairs} rechecked images differ)"
            f"{partial}: the gate would judge re-run noise; raise the margin or make the "
            "server deterministic"
        )
    return None
