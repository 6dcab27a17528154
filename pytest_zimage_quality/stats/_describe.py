"""Descriptive helpers and the study's two-axis (LPIPS x CLIPScore) reading."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from ._common import as_vector, to_dict
from ._verdicts import DECISIONS, FAIL, INFERIOR, NON_INFERIOR, PASS, VERDICTS

__all__ = ["LPIPS_BANDS", "Description", "describe", "lpips_band", "speedup", "two_axis_verdict"]

#: The study's LPIPS reading, made contiguous (the article leaves 0.05-0.1 and 0.4-0.5 unnamed).
LPIPS_BANDS: Final[tuple[tuple[float, str], ...]] = (
    (0.05, "visually indistinguishable"),
    (0.2, "minor detail variation"),
    (0.4, "clearly different composition"),
    (0.5, "strongly different"),
    (math.inf, "different concept"),
)


@dataclass(frozen=True)
class Description:
    """``n``, ``mean`` and sample standard deviation (ddof=1; ``None`` when n = 1)."""

    n: int
    mean: float
    std: float | None

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def describe(values: Sequence[float]) -> Description:
    """n, mean and sample standard deviation (ddof=1) of ``values``, e.g. "LPIPS mean ± std".

    Raises ValueError for an empty sequence or non-finite values.
    """
    x = as_vector(values, "values")
    std = float(np.std(x, ddof=1)) if x.size > 1 else None
    return Description(n=int(x.size), mean=float(np.mean(x)), std=std)


def speedup(reference_seconds: Sequence[float], candidate_seconds: Sequence[float]) -> float:
    """Median reference generation time over median candidate time (> 1: the candidate is faster).

    The median, not the mean: the one image that paid for loading a config's models would
    otherwise dominate a small run's figure. This is the run's one definition of speedup.
    """
    ref = as_vector(reference_seconds, "reference_seconds")
    cand = as_vector(candidate_seconds, "candidate_seconds")
    if np.any(ref <= 0) or np.any(cand <= 0):
        raise ValueError("generation times must be positive")
    return float(np.median(ref) / np.median(cand))


def lpips_band(lpips: float) -> str:
    """The study's reading of an LPIPS distance (made contiguous; see ``LPIPS_BANDS``)."""
    v = float(lpips)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"LPIPS must be a finite non-negative number, got {lpips!r}")
    for upper, label in LPIPS_BANDS:
        if v < upper:
            return label
    raise AssertionError("unreachable: the last band is unbounded")  # pragma: no cover


def two_axis_verdict(
    lpips_mean: float | None, gate_verdict: str, *, close_threshold: float = 0.20
) -> str:
    """Read LPIPS (distance from the reference image) and the CLIPScore gate together.

    From the study's "Reading both axes together" table:

    ``gate_verdict`` is a decision (``"non-inferior"`` ...) or its legacy name (``"pass"`` ...).

    - gate ``"fail"`` -> ``"worse"`` (whatever LPIPS says: prompt fidelity dropped);
    - gate ``"pass"`` and LPIPS < ``close_threshold`` -> ``"close and not worse"``;
    - gate ``"pass"`` and LPIPS >= ``close_threshold`` -> ``"different but not worse"``
      (the typical successful quantisation: a different trajectory, not a worse image);
    - gate ``"pass"`` with no LPIPS -> ``"not worse"``;
    - gate ``"inconclusive"`` / ``"insufficient data"`` -> ``"inconclusive"``.

    The default threshold 0.20 is the study's boundary between "minor composition / detail
    variation" (0.1-0.2) and "same subject, clearly different composition" (0.2-0.4).
    """
    if gate_verdict not in VERDICTS and gate_verdict not in DECISIONS:
        raise ValueError(
            f"gate_verdict must be one of {DECISIONS} (or {VERDICTS}), got {gate_verdict!r}"
        )
    thr = float(close_threshold)
    if not (math.isfinite(thr) and thr > 0):
        raise ValueError(f"close_threshold must be a positive number, got {close_threshold!r}")
    if lpips_mean is not None:
        lp = float(lpips_mean)
        if not math.isfinite(lp) or lp < 0:
            raise ValueError(f"lpips_mean must be a finite non-negative number, got {lpips_mean!r}")
    if gate_verdict in (FAIL, INFERIOR):
        return "worse"
    if gate_verdict not in (PASS, NON_INFERIOR):
        return "inconclusive"
    if lpips_mean is None:
        return "not worse"
    return "close and not worse" if float(lpips_mean) < thr else "different but not worse"
