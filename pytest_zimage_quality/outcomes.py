"""Infrastructure errors apart from quality failures, per case, per config and for the run.

A dead host and a worse model must not end the same way: the first calls for a retry, the
second blocks the pull request. So each case gets one of

- ``error``: it could not be generated or scored (unreachable host, server error, timeout,
  a corrupt image after the client's retries, a scorer that could not run). pytest shows E;
- ``failed``: its image was scored and judged worse. pytest shows F;
- ``passed`` (and pytest's ``skipped``, ``xfailed``, ``xpassed``, kept as they are).

Errors are further split by whether a retry can help (:func:`error_kind`): ``infrastructure``
(the host, the network, a timeout, a corrupt transfer) or ``setup`` (the graph, the model
files, the weights, the suite: the same run fails the same way again).

Exit status: with ``--zimage-infra-exit-status`` a run whose only problems were
infrastructure errors (no failure, no setup error, no config judged worse) exits with
:data:`INFRA_EXIT_STATUS`, 75 (``EX_TEMPFAIL`` of sysexits.h: "temporary failure, retry"),
which collides with none of pytest's own statuses 0–5. Otherwise pytest's status stands.

Pure: names and counts in, names out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

from .errors import (
    ComfyUIHTTPError,
    ComfyUIProtocolError,
    ComfyUIUnreachableError,
    GenerationInterruptedError,
    GenerationTimeoutError,
    ImageDecodeError,
    ImageError,
    ZImageError,
)

__all__ = [
    "INFRA_EXIT_STATUS",
    "CaseVerdict",
    "ErrorKind",
    "case_verdict",
    "config_verdict_kind",
    "error_kind",
    "run_exit_status",
    "verdict_counts",
]

#: sysexits.h EX_TEMPFAIL: the run met only infrastructure errors; retrying may succeed.
INFRA_EXIT_STATUS = 75

CaseVerdict = Literal["passed", "failed", "error", "skipped", "xfailed", "xpassed"]
ErrorKind = Literal["infrastructure", "setup"]

_TRANSIENT: tuple[type[ZImageError], ...] = (
    ComfyUIUnreachableError,
    ComfyUIProtocolError,
    GenerationTimeoutError,
    GenerationInterruptedError,
    ImageDecodeError,
)
#: pytest's ExitCode.TESTS_FAILED: tests ran and some did not pass.
_PYTEST_TESTS_FAILED = 1


def error_kind(error: BaseException) -> ErrorKind:
    """Whether a retry of the run can help with ``error``.

    ``infrastructure``: the host went away or never answered, a 5xx, a timeout, an image
    that arrived corrupt (after the client's own retries), an interruption by someone else.
    ``setup``: everything else (a 4xx, a rejected graph, missing model files, missing
    weights, a malformed suite, a server-side execution error such as out of memory).
    """
    if isinstance(error, ComfyUIHTTPError):
        return "infrastructure" if error.status >= 500 else "setup"
    if isinstance(error, _TRANSIENT):
        return "infrastructure"
    if isinstance(error, ImageError):
        return "infrastructure"
    if isinstance(error, TimeoutError | ConnectionError):
        return "infrastructure"
    return "setup"


def case_verdict(
    *, generated: bool, scored: bool, check_passed: bool | None, outcome: str = ""
) -> CaseVerdict:
    """One case's verdict: ``error`` when its image was not generated or not scored,
    ``failed``/``passed`` from the per-case check, pytest's skip/xfail outcomes kept."""
    if outcome in ("skipped", "xfailed", "xpassed"):
        return outcome  # type: ignore[return-value]  # narrowed by the membership test
    if not generated or not scored or check_passed is None:
        return "error"
    return "passed" if check_passed else "failed"


def verdict_counts(verdicts: Iterable[str]) -> dict[str, int]:
    """``{"passed": n, "failed": n, "error": n, ...}`` with the three always present."""
    counts = {"passed": 0, "failed": 0, "error": 0}
    for verdict in verdicts:
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def config_verdict_kind(gate_verdict: str, counts: Mapping[str, int]) -> str:
    """Whether a config's verdict reflects its quality or the infrastructure:
    ``"quality"`` when the gate judged it (every case generated and scored), ``"error"``
    when cases errored and the gate could not judge it, ``"incomplete"`` when it judged it
    from fewer cases than planned."""
    if counts.get("error", 0) == 0:
        return "quality"
    judged = gate_verdict.lower() not in ("no data", "incomplete", "insufficient data", "")
    return "incomplete" if judged else "error"


def run_exit_status(
    pytest_status: int,
    *,
    counts: Mapping[str, int],
    error_kinds: Iterable[ErrorKind],
    quality_failed_configs: int,
    enabled: bool,
) -> int:
    """The run's exit status: pytest's, or :data:`INFRA_EXIT_STATUS` when ``enabled`` and
    the run failed only because of infrastructure errors.

    ``counts``: case verdicts (:func:`verdict_counts`); ``error_kinds``: the kind of each
    errored case; ``quality_failed_configs``: configs the gate judged worse or could not
    show fine from complete data.
    """
    kinds = list(error_kinds)
    only_infrastructure = (
        counts.get("error", 0) > 0
        and counts.get("failed", 0) == 0
        and counts.get("xpassed", 0) == 0
        and quality_failed_configs == 0
        and bool(kinds)
        and all(kind == "infrastructure" for kind in kinds)
    )
    if enabled and pytest_status == _PYTEST_TESTS_FAILED and only_infrastructure:
        return INFRA_EXIT_STATUS
    return pytest_status
