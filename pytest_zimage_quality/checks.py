"""The per-case check: does one image stay within its band? (docs/gate.md)

- A candidate passes when its CLIPScore >= the reference config's CLIPScore for the same
  prompt and seed minus the band; its LPIPS to that reference image is recorded alongside.
- A reference passes when its image is sane (decoded, not blank) and its CLIPScore is at least
  the floor (the study: below 0.20 the image does not match the prompt at all). With random
  scorer weights there is no floor: their scores sit on no meaningful absolute scale.
- A missing, NaN or infinite score fails its case: a data problem is never a pass.

The band. A run tests many images at once: with 30 prompts x 10 seeds the fixed 0.04 band fires
somewhere in almost every healthy run (paired image-level SD 0.02). The "scaled" band widens with
the number m of candidate cases in the run so that, with no true drop, the chance that ANY case
fails stays <= ``family_alpha`` (Bonferroni, valid under any dependence between cases):

    band = clamp(sd * z_{1 - family_alpha / m}, low = tolerance, high = 0.09)

``sd`` is the image-level paired SD the band is built to tolerate (default 0.02; the study's is
about 0.014). The ceiling 0.09 keeps a broken image (CLIPScore >= 0.10 below its reference's)
failing its case whatever m is. m is known before any case runs, so every case is tested against
the same band as soon as it finishes. The fixed band (``mode="fixed"``: the tolerance alone)
stays selectable. A further gated metric's ``band = "scaled"`` is the same rule in its own units
(its ``band_sd``, no floor, its own ``band_ceiling``), the family budget shared among the run's
scaled bands (``planning.plan_suites``).

Pure: takes a ``CaseRecord`` and returns the verdict and the message a reviewer reads.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Final, Literal

from .records import CaseRecord

__all__ = [
    "BAND_CEILING",
    "BAND_MODES",
    "DEFAULT_BAND_SD",
    "DEFAULT_FAMILY_ALPHA",
    "CaseBand",
    "CheckResult",
    "case_band",
    "check_record",
]

#: A broken image is one whose CLIPScore is at least 0.10 below its reference's; the band never
#: reaches that far, so such an image always fails its case.
BAND_CEILING: Final = 0.09
#: The largest paired image-level SD the scaled band is built to tolerate (study: about 0.014).
DEFAULT_BAND_SD: Final = 0.02
#: Run-level false-alarm budget of the per-case tests when nothing changed.
DEFAULT_FAMILY_ALPHA: Final = 0.05
BandMode = Literal["scaled", "fixed"]
BAND_MODES: Final[tuple[str, ...]] = ("scaled", "fixed")


@dataclass(frozen=True)
class CaseBand:
    """The per-case band of one run and how it was made (shown in the report header)."""

    width: float
    mode: str
    n_cases: int
    tolerance: float
    sd: float
    family_alpha: float
    z: float | None
    limited_by: str | None  # "tolerance" (the floor), "ceiling", or None
    ceiling: float = BAND_CEILING  # inf: no cap (a further gated metric without band_ceiling)

    def describe(self) -> str:
        if self.mode == "fixed":
            return f"fixed band {self.width:.4f}"
        how = f"{self.sd:g} x z(1 - {self.family_alpha:g}/{self.n_cases}) = {self.sd * (self.z or 0):.4f}"
        limit = {
            None: "",
            "tolerance": f", raised to the tolerance {self.tolerance:g}",
            "ceiling": f", capped at {self.ceiling:g} so a broken image still fails",
        }[self.limited_by]
        return f"scaled band {self.width:.4f} ({how}{limit})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ceiling": self.ceiling if math.isfinite(self.ceiling) else None}


def case_band(
    n_cases: int,
    *,
    mode: str = "scaled",
    tolerance: float = 0.04,
    sd: float = DEFAULT_BAND_SD,
    family_alpha: float = DEFAULT_FAMILY_ALPHA,
    ceiling: float = BAND_CEILING,
) -> CaseBand:
    """The band every candidate case of a run of ``n_cases`` candidate cases is checked against
    (``ceiling``: CLIPScore's 0.09 by default; a further gated metric's own, or inf)."""
    if mode not in BAND_MODES:
        raise ValueError(f"band mode must be one of {BAND_MODES}, got {mode!r}")
    for name, value in (("tolerance", tolerance), ("sd", sd)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if not (ceiling > 0):
        raise ValueError(f"ceiling must be > 0, got {ceiling!r}")
    if not (0.0 < family_alpha < 1.0):
        raise ValueError(f"family_alpha must be in (0, 1), got {family_alpha!r}")
    if n_cases < 1:
        raise ValueError(f"n_cases must be >= 1, got {n_cases!r}")
    if mode == "fixed":
        return CaseBand(tolerance, mode, n_cases, tolerance, sd, family_alpha, None, None, ceiling)
    # The standard library's normal quantile: this module loads with the plugin, scipy must not.
    z = -NormalDist().inv_cdf(family_alpha / n_cases)
    raw = sd * z
    limited_by = None
    width = raw
    if raw < tolerance:
        width, limited_by = tolerance, "tolerance"
    if width > ceiling:
        width, limited_by = ceiling, "ceiling"
    return CaseBand(width, mode, n_cases, tolerance, sd, family_alpha, z, limited_by, ceiling)


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    message: str


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _unusable(value: float | None) -> bool:
    return value is None or not math.isfinite(value)


def check_record(
    record: CaseRecord, *, blank: bool = False, band: CaseBand | None = None
) -> CheckResult:
    """Check one scored case; the message gives every number and the image paths.

    The candidate's band is ``band.width`` when given, else ``record.tolerance``.
    """
    paths = f"\n  image:     {record.image_path}"
    if record.is_reference:
        floor = record.clip_floor  # None: not applied (random weights have no absolute scale)
        if blank:
            return CheckResult(
                False,
                f"{record.case_id}: the reference image is blank (near-constant pixels): the "
                f"generation produced nothing usable (CLIPScore {_fmt(record.clipscore)}){paths}",
            )
        if _unusable(record.clipscore):
            return CheckResult(
                False,
                f"{record.case_id}: the reference CLIPScore is {record.clipscore!r}, not a finite "
                f"number: the scorer produced no usable score for this image (check the image "
                f"and the scorer's device/precision){paths}",
            )
        assert record.clipscore is not None
        if floor is not None and record.clipscore < floor:
            return CheckResult(
                False,
                f"{record.case_id}: reference CLIPScore {_fmt(record.clipscore)} is below the floor "
                f"{floor:.2f}: the image does not match its prompt{paths}",
            )
        return CheckResult(True, "")
    ref_paths = f"{paths}\n  reference: {record.reference_image_path}"
    for what, value in (
        ("CLIPScore", record.clipscore),
        ("reference CLIPScore", record.reference_clipscore),
    ):
        if _unusable(value):
            return CheckResult(
                False,
                f"{record.case_id}: the {what} is {value!r}, not a finite number: no comparison "
                f"is possible, so the case fails (check the image and the scorer's "
                f"device/precision){ref_paths}",
            )
    assert record.clipscore is not None
    assert record.reference_clipscore is not None
    width = band.width if band is not None else record.tolerance
    tolerance = width if width is not None else 0.0
    delta = record.clipscore - record.reference_clipscore
    if blank or delta < -tolerance:
        what = "the image is blank (near-constant pixels); " if blank else ""
        limit = (
            f"-band {tolerance:.4f} ({band.describe()}; "
            if band is not None
            else f"-tolerance {tolerance:.4f} ("
        )
        return CheckResult(
            False,
            f"{record.case_id}: {what}CLIPScore {_fmt(record.clipscore)} vs reference "
            f"{record.reference} {_fmt(record.reference_clipscore)}: delta {delta:+.4f} is below "
            f"{limit}LPIPS vs reference {_fmt(record.lpips, 3)}){ref_paths}",
        )
    return CheckResult(True, "")
