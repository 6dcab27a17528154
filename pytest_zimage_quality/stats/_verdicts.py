"""The gate's verdict vocabulary, the rule from the interval to a verdict, and the exit decision.

A candidate config's verdict comes from its one-sided confidence bounds alone (never from power):

- NON-INFERIOR: the (1 - alpha) lower bound of the mean paired difference is above -margin;
- INFERIOR: the (1 - alpha) upper bound is below -margin;
- INCONCLUSIVE: neither;
- INSUFFICIENT DATA: too few prompts for any verdict at this alpha;
- INCOMPLETE: a run-level label the summary applies (no usable pairs, an interrupted run).

Only NON-INFERIOR lets a run pass; in ADVISORY mode the gate is shown but never sets the exit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._common import to_dict

__all__ = [
    "DECISIONS",
    "DECISION_LABELS",
    "FAIL",
    "INCOMPLETE",
    "INCONCLUSIVE",
    "INFERIOR",
    "INSUFFICIENT",
    "LEGACY_VERDICT",
    "NON_INFERIOR",
    "PASS",
    "VERDICTS",
    "Decision",
    "ExitDecision",
    "Verdict",
    "decide",
    "gate_exit",
]

Decision = Literal["non-inferior", "inferior", "inconclusive", "insufficient data", "incomplete"]
NON_INFERIOR: Final = "non-inferior"
INFERIOR: Final = "inferior"
INCONCLUSIVE: Final = "inconclusive"
INSUFFICIENT: Final = "insufficient data"
INCOMPLETE: Final = "incomplete"
DECISIONS: Final[tuple[str, ...]] = (NON_INFERIOR, INFERIOR, INCONCLUSIVE, INSUFFICIENT, INCOMPLETE)
#: How every output prints a decision.
DECISION_LABELS: Final[Mapping[str, str]] = {
    NON_INFERIOR: "NON-INFERIOR",
    INFERIOR: "INFERIOR",
    INCONCLUSIVE: "INCONCLUSIVE",
    INSUFFICIENT: "INSUFFICIENT DATA",
    INCOMPLETE: "INCOMPLETE",
}

# The vocabulary of GateResult.verdict and summary.json schema 1 (kept until the summary moves to
# ``decision``): the same events under their old names; "pass" is exactly NON-INFERIOR.
Verdict = Literal["pass", "fail", "inconclusive", "insufficient data"]
PASS: Final = "pass"
FAIL: Final = "fail"
VERDICTS: Final[tuple[str, ...]] = (PASS, FAIL, INCONCLUSIVE, INSUFFICIENT)
LEGACY_VERDICT: Final[Mapping[str, Verdict]] = {
    NON_INFERIOR: PASS,
    INFERIOR: FAIL,
    INCONCLUSIVE: INCONCLUSIVE,
    INSUFFICIENT: INSUFFICIENT,
    INCOMPLETE: INCONCLUSIVE,
}


def decide(lower: float | None, upper: float | None, margin: float) -> Decision:
    """The verdict from the one-sided bounds alone (None: no bound could be computed).

    Monotone in the bounds: a higher lower bound or a higher upper bound never gives a worse
    verdict, so a procedure whose bounds are monotone in the scores gives monotone verdicts.
    """
    if lower is None or upper is None or math.isnan(lower) or math.isnan(upper):
        return INSUFFICIENT
    if lower > -margin:
        return NON_INFERIOR
    if upper < -margin:
        return INFERIOR
    return INCONCLUSIVE


@dataclass(frozen=True)
class ExitDecision:
    """Whether the gate lets the run exit 0, and the reason a reader sees when it does not.

    ``gate_passed`` is True only when every gated config is NON-INFERIOR (and at least one was
    gated). ``sets_exit_status`` is False in advisory mode: the verdicts are shown (labelled
    ADVISORY) but the run's exit status ignores them.
    """

    gate_passed: bool
    sets_exit_status: bool
    advisory: bool
    not_shown: tuple[str, ...]
    reason: str

    @property
    def fails_run(self) -> bool:
        return self.sets_exit_status and not self.gate_passed

    def to_dict(self) -> dict[str, Any]:
        return {**to_dict(self), "fails_run": self.fails_run}


def gate_exit(decisions: Mapping[str, str], *, advisory: bool = False) -> ExitDecision:
    """Every verdict other than NON-INFERIOR fails the run, unless ``advisory``.

    ``decisions`` maps a config's display name to its decision (one of ``DECISIONS``; the legacy
    verdict names are accepted too). No configs at all is not a pass: there was nothing to judge.
    """
    unknown = {d for d in decisions.values() if d not in DECISIONS and d not in VERDICTS}
    if unknown:
        raise ValueError(f"unknown gate decisions {sorted(unknown)}; expected one of {DECISIONS}")
    not_shown = tuple(name for name, d in decisions.items() if d not in (NON_INFERIOR, PASS))
    if not decisions:
        reason = "no candidate config was gated (no usable pairs): nothing was shown"
    elif not_shown:
        reason = "non-inferiority not shown for " + ", ".join(
            f"{name} ({DECISION_LABELS.get(decisions[name], decisions[name].upper())})"
            for name in not_shown
        )
    else:
        reason = ""
    passed = bool(decisions) and not not_shown
    if advisory and reason:
        reason = f"ADVISORY (does not set the exit status): {reason}"
    return ExitDecision(
        gate_passed=passed,
        sets_exit_status=not advisory,
        advisory=advisory,
        not_shown=not_shown,
        reason=reason,
    )
