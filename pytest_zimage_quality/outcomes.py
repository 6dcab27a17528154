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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

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
    "ERROR_KIND_PROPERTY",
    "INFRA_EXIT_STATUS",
    "VERDICT_PROPERTY",
    "CaseVerdict",
    "ErrorKind",
    "RunVerdicts",
    "case_verdict",
    "config_verdict",
    "config_verdict_kind",
    "error_kind",
    "error_properties",
    "record_verdict",
    "run_exit_status",
    "run_verdicts",
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
#: JUnit ``<property>`` names (pytest ``user_properties``) of a case's verdict and error kind.
VERDICT_PROPERTY = "zimage_verdict"
ERROR_KIND_PROPERTY = "zimage_error_kind"

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


def error_properties(error: BaseException) -> list[tuple[str, object]]:
    """The ``user_properties`` of a case that errored: its verdict and :func:`error_kind`."""
    return [(VERDICT_PROPERTY, "error"), (ERROR_KIND_PROPERTY, error_kind(error))]


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
    error_kinds: Iterable[str],
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


#: Config-level words (the gate's decision kept as its own field beside it).
_INFERIOR_WORDS = ("fail", "inferior")
_UNDECIDED_WORDS = ("inconclusive", "insufficient data", "incomplete")


def record_verdict(*, check: str, outcome: str) -> CaseVerdict:
    """A recorded case's verdict from its per-case ``check`` ("pass"/"fail"/"error") and
    pytest's ``outcome``: the outcome's skip/xfail words win, then an error, then the check."""
    if outcome in ("skipped", "xfailed", "xpassed"):
        return outcome  # type: ignore[return-value]  # narrowed by the membership test
    if outcome == "error" or check == "error":
        return "error"
    if check == "fail" or outcome == "failed":
        return "failed"
    return "passed" if check == "pass" else "error"


def config_verdict(*, is_reference: bool, gate_word: str, counts: Mapping[str, int]) -> str:
    """One config's verdict: ``failed`` when a case failed its check or the gate judged it
    worse, else ``error`` when cases errored (the gate could not judge it on complete data),
    else ``failed`` when the gate stayed undecided on complete data, else ``passed``
    (``skipped`` when nothing ran). ``gate_word``: its gate verdict or decision."""
    ran = sum(counts.get(k, 0) for k in ("passed", "failed", "error", "xfailed", "xpassed"))
    if ran == 0:
        return "skipped"
    word = "" if is_reference else gate_word.lower()
    if counts.get("failed", 0) or counts.get("xpassed", 0) or word in _INFERIOR_WORDS:
        return "failed"
    if counts.get("error", 0):
        return "error"
    return "failed" if word in _UNDECIDED_WORDS else "passed"


@dataclass(frozen=True)
class RunVerdicts:
    """summary.json's ``verdicts`` block: each case's and config's verdict, the counts, the
    kinds of the errors, and the exit status this module chose."""

    cases: Mapping[str, str]
    configs: Mapping[str, str]
    counts: Mapping[str, int]
    error_kinds: Mapping[str, str]
    exit_status: int | None = None
    infra_exit_status: bool = False
    errors: Mapping[str, str] = field(default_factory=dict)
    #: why the run stopped before its last case (-x, Ctrl-C, SIGTERM); "" when it ran to the end
    stopped_early: str = ""

    @property
    def verdict(self) -> str:
        """The run in one word: error beats failed only when nothing failed on quality, and a
        run that stopped early is never "passed"."""
        if any(v == "failed" for v in self.configs.values()) or self.counts.get("failed", 0):
            return "failed"
        if self.counts.get("error", 0) or any(v == "error" for v in self.configs.values()):
            return "error"
        return "incomplete" if self.stopped_early else "passed"

    @property
    def only_infrastructure(self) -> bool:
        kinds = list(self.error_kinds.values())
        return self.verdict == "error" and bool(kinds) and set(kinds) == {"infrastructure"}

    def last_line(self) -> str:
        """The zimage summary's last line: failures and errors counted apart, and what the
        exit status means."""
        counts = self.counts
        infra = sum(kind == "infrastructure" for kind in self.error_kinds.values())
        setup = sum(kind != "infrastructure" for kind in self.error_kinds.values())
        parts = [f"{counts.get('passed', 0)} passed", f"{counts.get('failed', 0)} failed (quality)"]
        if counts.get("error", 0):
            kinds = ", ".join(
                text
                for n, text in ((infra, f"{infra} infrastructure"), (setup, f"{setup} setup"))
                if n
            )
            parts.append(f"{counts['error']} error(s) ({kinds or 'not generated or scored'})")
        line = f"zimage verdict: {self.verdict.upper()} — " + ", ".join(parts)
        if self.stopped_early:
            line += f"; the run stopped early ({self.stopped_early})"
        if self.exit_status == INFRA_EXIT_STATUS:
            line += f"; exit status {INFRA_EXIT_STATUS}: infrastructure only, retry the run"
        elif self.only_infrastructure and not self.infra_exit_status:
            line += (
                f"; infrastructure errors only (--zimage-infra-exit-status would exit "
                f"{INFRA_EXIT_STATUS})"
            )
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "counts": dict(self.counts),
            "configs": dict(self.configs),
            "cases": dict(self.cases),
            "error_kinds": dict(self.error_kinds),
            "errors": dict(self.errors),
            "only_infrastructure": self.only_infrastructure,
            "exit_status": self.exit_status,
            "stopped_early": self.stopped_early,
        }


def run_verdicts(
    cases: Sequence[tuple[str, str, str, str]],
    configs: Sequence[tuple[str, bool, str]],
    *,
    error_kinds: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
) -> RunVerdicts:
    """The run's verdicts. ``cases``: (case name, config name, check, pytest outcome) rows;
    ``configs``: (config name, is_reference, gate verdict or decision); ``error_kinds`` and
    ``errors``: per errored case name, its :func:`error_kind` and message."""
    case_verdicts: dict[str, str] = {}
    per_config: dict[str, list[str]] = {}
    for name, config, check, outcome in cases:
        verdict = record_verdict(check=check, outcome=outcome)
        case_verdicts[name] = verdict
        per_config.setdefault(config, []).append(verdict)
    config_verdicts = {
        name: config_verdict(
            is_reference=is_ref, gate_word=word, counts=verdict_counts(per_config.get(name, ()))
        )
        for name, is_ref, word in configs
    }
    errored = {k for k, v in case_verdicts.items() if v == "error"}
    return RunVerdicts(
        cases=case_verdicts,
        configs=config_verdicts,
        counts=verdict_counts(case_verdicts.values()),
        error_kinds={k: error_kinds.get(k, "setup") for k in sorted(errored)},
        errors={k: v for k, v in (errors or {}).items() if k in errored},
    )
