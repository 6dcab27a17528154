"""Infrastructure errors kept apart from quality failures, and the retryable exit status."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pytest_zimage_quality.errors import (
    ComfyUIHTTPError,
    ComfyUIUnreachableError,
    GenerationFailedError,
    GenerationTimeoutError,
    ImageDecodeError,
    ModelFilesMissingError,
    WeightsNotFoundError,
    WorkflowRejectedError,
)
from pytest_zimage_quality.outcomes import (
    ERROR_KIND_PROPERTY,
    INFRA_EXIT_STATUS,
    VERDICT_PROPERTY,
    ErrorKind,
    case_verdict,
    config_verdict,
    config_verdict_kind,
    error_kind,
    error_properties,
    record_verdict,
    run_exit_status,
    run_verdicts,
    verdict_counts,
)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ComfyUIUnreachableError("refused"), "infrastructure"),
        (ComfyUIHTTPError("500", status=500), "infrastructure"),
        (ComfyUIHTTPError("503", status=503), "infrastructure"),
        (ComfyUIHTTPError("403", status=403), "setup"),
        (GenerationTimeoutError("slow"), "infrastructure"),
        (ImageDecodeError("truncated"), "infrastructure"),
        (TimeoutError(), "infrastructure"),
        (WorkflowRejectedError("bad graph"), "setup"),
        (ModelFilesMissingError("no file"), "setup"),
        (GenerationFailedError("OOM"), "setup"),
        (WeightsNotFoundError("no weights"), "setup"),
        (ValueError("bug"), "setup"),
    ],
)
def test_error_kind_says_whether_a_retry_can_help(error: BaseException, kind: str) -> None:
    assert error_kind(error) == kind


def test_case_verdict_tells_errors_from_failures() -> None:
    assert case_verdict(generated=True, scored=True, check_passed=True) == "passed"
    assert case_verdict(generated=True, scored=True, check_passed=False) == "failed"
    assert case_verdict(generated=False, scored=False, check_passed=None) == "error"
    assert case_verdict(generated=True, scored=False, check_passed=None) == "error"
    assert case_verdict(generated=True, scored=True, check_passed=None) == "error"
    assert (
        case_verdict(generated=True, scored=True, check_passed=False, outcome="xfailed")
        == "xfailed"
    )
    assert verdict_counts(["passed", "error", "error", "skipped"]) == {
        "passed": 1,
        "failed": 0,
        "error": 2,
        "skipped": 1,
    }


def test_config_verdict_kind() -> None:
    assert config_verdict_kind("fail", {"failed": 3}) == "quality"
    assert config_verdict_kind("no data", {"error": 18}) == "error"
    assert config_verdict_kind("pass", {"passed": 15, "error": 3}) == "incomplete"


def test_only_infrastructure_errors_exit_with_the_retry_status() -> None:
    dead_host = {"passed": 20, "failed": 0, "error": 52}
    kinds: list[ErrorKind] = ["infrastructure"] * 52

    def status(enabled: bool) -> int:
        return run_exit_status(
            1, counts=dead_host, error_kinds=kinds, quality_failed_configs=0, enabled=enabled
        )

    assert status(True) == INFRA_EXIT_STATUS == 75
    assert status(False) == 1  # off by default
    assert INFRA_EXIT_STATUS not in range(6)  # none of pytest's own statuses


@pytest.mark.parametrize(
    ("counts", "kinds", "quality_failed", "status"),
    [
        ({"failed": 1, "error": 3}, ["infrastructure"] * 3, 0, 1),  # a real failure too
        ({"error": 2}, ["infrastructure", "setup"], 0, 1),  # a retry cannot fix a setup error
        ({"error": 2}, ["infrastructure"] * 2, 1, 1),  # a config judged worse anyway
        ({"passed": 3}, [], 0, 1),  # nothing errored: pytest's status stands
    ],
)
def test_anything_but_infrastructure_keeps_pytest_status(
    counts: dict[str, int], kinds: list[str], quality_failed: int, status: int
) -> None:
    assert (
        run_exit_status(
            1,
            counts=counts,
            error_kinds=kinds,
            quality_failed_configs=quality_failed,
            enabled=True,
        )
        == status
    )


def test_an_interrupted_run_keeps_its_status() -> None:
    counts = {"error": 4}
    assert (
        run_exit_status(
            2,
            counts=counts,
            error_kinds=["infrastructure"] * 4,
            quality_failed_configs=0,
            enabled=True,
        )
        == 2
    )


@pytest.mark.parametrize(
    ("check", "outcome", "verdict"),
    [
        ("pass", "passed", "passed"),
        ("fail", "failed", "failed"),
        ("error", "error", "error"),
        ("error", "failed", "error"),  # an error raised in the call phase is still an error
        ("fail", "xfailed", "xfailed"),
        ("pass", "xpassed", "xpassed"),
        ("", "skipped", "skipped"),
    ],
)
def test_record_verdict(check: str, outcome: str, verdict: str) -> None:
    assert record_verdict(check=check, outcome=outcome) == verdict


def test_config_verdict_keeps_quality_failures_apart_from_errors() -> None:
    ok = {"passed": 3}
    assert config_verdict(is_reference=True, gate_word="reference", counts=ok) == "passed"
    assert config_verdict(is_reference=False, gate_word="pass", counts=ok) == "passed"
    assert config_verdict(is_reference=False, gate_word="fail", counts=ok) == "failed"
    assert config_verdict(is_reference=False, gate_word="inconclusive", counts=ok) == "failed"
    errored = {"passed": 1, "error": 2}
    # the gate could not judge from the cases that came back: an error, not a failure
    assert config_verdict(is_reference=False, gate_word="no data", counts=errored) == "error"
    assert (
        config_verdict(is_reference=False, gate_word="insufficient data", counts=errored) == "error"
    )
    # a case that failed on quality makes it a failure even with errors beside it
    assert (
        config_verdict(is_reference=False, gate_word="no data", counts={"failed": 1, "error": 1})
        == "failed"
    )
    assert config_verdict(is_reference=False, gate_word="no data", counts={}) == "skipped"


def test_run_verdicts_and_last_line_tell_errors_from_failures() -> None:
    verdicts = run_verdicts(
        [
            ("p-ref-1", "ref", "pass", "passed"),
            ("p-fp8-1", "fp8", "error", "error"),
            ("p-fp4-1", "fp4", "error", "error"),
        ],
        [("ref", True, "reference"), ("fp8", False, "no data"), ("fp4", False, "no data")],
        error_kinds={"p-fp8-1": "infrastructure", "p-fp4-1": "infrastructure"},
        errors={"p-fp8-1": "unreachable", "p-ref-1": "ignored: it passed"},
    )
    assert verdicts.verdict == "error"
    assert verdicts.only_infrastructure
    assert verdicts.configs == {"ref": "passed", "fp8": "error", "fp4": "error"}
    assert verdicts.errors == {"p-fp8-1": "unreachable"}
    status = run_exit_status(
        1,
        counts=verdicts.counts,
        error_kinds=verdicts.error_kinds.values(),
        quality_failed_configs=0,
        enabled=True,
    )
    assert status == INFRA_EXIT_STATUS
    line = replace(verdicts, exit_status=status).last_line()
    assert line.startswith("zimage verdict: ERROR")
    assert "0 failed (quality)" in line
    assert "2 error(s) (2 infrastructure)" in line
    assert "exit status 75" in line
    hint = replace(verdicts, exit_status=1).last_line()
    assert "--zimage-infra-exit-status would exit 75" in hint
    data = verdicts.to_dict()
    assert data["cases"]["p-fp8-1"] == "error"
    assert data["only_infrastructure"] is True


def test_a_quality_failure_beside_errors_is_a_failed_run() -> None:
    verdicts = run_verdicts(
        [("a", "fp8", "fail", "failed"), ("b", "fp4", "error", "error")],
        [("fp8", False, "fail"), ("fp4", False, "no data")],
        error_kinds={"b": "infrastructure"},
    )
    assert verdicts.verdict == "failed"
    assert not verdicts.only_infrastructure
    assert verdicts.last_line().startswith("zimage verdict: FAILED")


def test_error_properties_name_the_kind() -> None:
    assert error_properties(ComfyUIUnreachableError("gone")) == [
        (VERDICT_PROPERTY, "error"),
        (ERROR_KIND_PROPERTY, "infrastructure"),
    ]
    assert error_properties(ModelFilesMissingError("no file"))[1] == (ERROR_KIND_PROPERTY, "setup")
