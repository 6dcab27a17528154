"""The per-case check: does one image stay within its band? (docs/gate.md)

- A candidate passes when its CLIPScore >= the reference config's CLIPScore for the same
  prompt and seed minus the tolerance; its LPIPS to that reference image is recorded alongside.
- A reference passes when its image is sane (decoded, not blank) and its CLIPScore is at least
  the floor (the study: below 0.20 the image does not match the prompt at all). With random
  scorer weights there is no floor: their scores sit on no meaningful absolute scale.

Pure: takes a ``CaseRecord`` and returns the verdict and the message a reviewer reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import CaseRecord

__all__ = ["CheckResult", "check_record"]


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    message: str


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def check_record(record: CaseRecord, *, blank: bool = False) -> CheckResult:
    """Check one scored case; the message gives every number and the image paths."""
    paths = f"\n  image:     {record.image_path}"
    if record.is_reference:
        floor = record.clip_floor  # None: not applied (random weights have no absolute scale)
        if blank:
            return CheckResult(
                False,
                f"{record.case_id}: the reference image is blank (near-constant pixels): the "
                f"generation produced nothing usable (CLIPScore {_fmt(record.clipscore)}){paths}",
            )
        assert record.clipscore is not None
        if floor is not None and record.clipscore < floor:
            return CheckResult(
                False,
                f"{record.case_id}: reference CLIPScore {_fmt(record.clipscore)} is below the floor "
                f"{floor:.2f}: the image does not match its prompt{paths}",
            )
        return CheckResult(True, "")
    assert record.clipscore is not None
    assert record.reference_clipscore is not None
    tolerance = record.tolerance if record.tolerance is not None else 0.0
    delta = record.clipscore - record.reference_clipscore
    if blank or delta < -tolerance:
        what = "the image is blank (near-constant pixels); " if blank else ""
        return CheckResult(
            False,
            f"{record.case_id}: {what}CLIPScore {_fmt(record.clipscore)} vs reference "
            f"{record.reference} {_fmt(record.reference_clipscore)}: delta {delta:+.4f} is below "
            f"-tolerance {tolerance:.4f} (LPIPS vs reference {_fmt(record.lpips, 3)})"
            f"{paths}\n  reference: {record.reference_image_path}",
        )
    return CheckResult(True, "")
