"""Infrastructure errors kept apart from quality failures, and the retryable exit status."""

from __future__ import annotations

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
    INFRA_EXIT_STATUS,
    ErrorKind,
    case_verdict,
    config_verdict_kind,
    error_kind,
    run_exit_status,
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
            error_kinds=kinds,  # type: ignore[arg-type]
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
