"""Shared plumbing of the statistics package: JSON-ready values, input checks, pairing."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

FloatArray = npt.NDArray[np.float64]

#: CLIPScores keyed by prompt; seeds aligned by position.
ScoreTable = Mapping[str, Sequence[float]]


def plain(value: Any) -> Any:
    """A JSON-ready copy of ``value``: NaN/inf -> None, tuples -> lists, numpy -> Python."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, np.ndarray)):
        return [plain(v) for v in value]
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot make {type(value).__name__} JSON-ready")


def to_dict(obj: Any) -> dict[str, Any]:
    """Every dataclass field of ``obj``, JSON-ready."""
    return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}


def as_vector(values: Any, what: str) -> FloatArray:
    """A finite, non-empty 1-D float array, or ValueError naming ``what`` and the bad positions."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise ValueError(f"{what} must be a sequence of numbers, got {type(values).__name__}")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be a sequence of numbers: {exc}") from exc
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(arr)):
        bad = [i for i, v in enumerate(arr.tolist()) if not math.isfinite(v)]
        raise ValueError(f"{what} has non-finite values (NaN or inf) at positions {bad}")
    return arr


@dataclass(frozen=True)
class Paired:
    """Reference and candidate scores of the same prompts, seeds aligned by position."""

    prompts: tuple[str, ...]
    reference: tuple[FloatArray, ...]
    candidate: tuple[FloatArray, ...]

    @property
    def diffs(self) -> tuple[FloatArray, ...]:
        return tuple(c - r for r, c in zip(self.reference, self.candidate, strict=True))


def pair(reference: ScoreTable, candidate: ScoreTable) -> Paired:
    """Check that both tables hold the same prompts with the same seed counts, and pair them."""
    for name, table in (("reference", reference), ("candidate", candidate)):
        if not isinstance(table, Mapping):
            raise ValueError(
                f"{name} must be a mapping of prompt -> per-seed scores, got {type(table).__name__}"
            )
    if len(reference) == 0:
        raise ValueError("no prompts: reference is empty")
    missing_c = [p for p in reference if p not in candidate]
    missing_r = [p for p in candidate if p not in reference]
    if missing_c or missing_r:
        parts = []
        if missing_c:
            parts.append(f"in reference but not candidate: {missing_c}")
        if missing_r:
            parts.append(f"in candidate but not reference: {missing_r}")
        raise ValueError("reference and candidate must have the same prompts; " + "; ".join(parts))
    prompts = tuple(reference)
    refs: list[FloatArray] = []
    cands: list[FloatArray] = []
    for p in prompts:
        r = as_vector(reference[p], f"reference[{p!r}]")
        c = as_vector(candidate[p], f"candidate[{p!r}]")
        if r.size != c.size:
            raise ValueError(
                f"prompt {p!r}: reference has {r.size} seeds but candidate has {c.size}; "
                "seeds are paired by position, so both must list the same seeds"
            )
        refs.append(r)
        cands.append(c)
    return Paired(prompts, tuple(refs), tuple(cands))


def check_alpha(alpha: float) -> float:
    a = float(alpha)
    if not (0.0 < a < 0.5):
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha!r}")
    return a


def check_margin(margin: float) -> float:
    mg = float(margin)
    if not (math.isfinite(mg) and mg > 0):
        raise ValueError(f"margin must be a finite number > 0, got {margin!r}")
    return mg


def is_constant(x: FloatArray) -> bool:
    """True when all values are equal up to rounding (no usable spread estimate).

    scipy warns of catastrophic cancellation when max|x - mean| < 10 eps |mean|; anything within
    100 eps of the largest magnitude is treated as exactly constant, so that never happens.
    """
    spread = float(np.max(np.abs(x - np.mean(x))))
    scale = float(np.max(np.abs(x)))
    return bool(spread <= 100.0 * float(np.finfo(np.float64).eps) * scale)


def t_crit(n: int, alpha: float) -> float:
    """One-sided critical value t_{1-alpha, n-1}."""
    return float(sps.t.ppf(1.0 - alpha, n - 1))
