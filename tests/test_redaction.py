"""Secrets never leave: redaction, header checks, the log filter, server text sanitizing."""

from __future__ import annotations

import argparse
import base64
import logging
from pathlib import Path

import pytest

from pytest_zimage_quality.artifacts import ReportDir, ResultsLog, read_results
from pytest_zimage_quality.errors import ComfyUIHTTPError, ScorerError
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.redaction import (
    REDACTED,
    HeaderValueError,
    RedactingFilter,
    check_header,
    redact,
    register_header,
    register_secret,
    sanitize_server_text,
)
from pytest_zimage_quality.settings import parse_header

SECRET = "Zq-planted-secret-4711"


@pytest.mark.parametrize("value", [f"Bearer {SECRET}\r\nX: y", f"Bearer {SECRET}\nmore", "a\x00b"])
def test_header_values_that_split_lines_are_refused_without_echo(value: str) -> None:
    with pytest.raises(HeaderValueError) as info:
        check_header("Authorization", value)
    assert SECRET not in str(info.value)
    assert "Authorization" in str(info.value)
    with pytest.raises(argparse.ArgumentTypeError) as parsed:
        parse_header(f"Authorization: {value}")
    assert SECRET not in str(parsed.value)


def test_non_latin1_header_is_refused_and_a_long_basic_credential_is_fine() -> None:
    with pytest.raises(HeaderValueError, match="Latin-1"):
        check_header("X-Token", "jeton-\u20ac-secret")
    token = base64.b64encode(b"user:" + b"x" * 300).decode("ascii")
    assert parse_header(f"Authorization: Basic {token}") == ("Authorization", f"Basic {token}")


def test_registered_values_and_their_parts_are_redacted() -> None:
    password = "pw-" + SECRET
    token = base64.b64encode(f"alice:{password}".encode()).decode("ascii")
    register_header("Authorization", f"Basic {token}")
    register_header("X-Api-Key", SECRET)
    register_secret("url-password-1234")
    text = redact(
        f"got {token} and {password} and {SECRET} and url-password-1234 and url-password-1234"
    )
    assert SECRET not in text
    assert token not in text
    assert "url-password-1234" not in text
    assert "***" in text


def test_echoed_credential_headers_are_redacted_even_when_unregistered() -> None:
    echoed = 'headers: {"Authorization": "Bearer other-token-xyz", "Cookie": "session=abc123"}'
    text = redact(echoed)
    assert "other-token-xyz" not in text
    assert "abc123" not in text


def test_server_text_is_escaped_for_the_terminal() -> None:
    hostile = "boom\x1b[31mRED\x1b]0;title\x07\u202eevil\x00\r\x08"
    shown = sanitize_server_text(hostile)
    for raw in ("\x1b", "\x07", "\u202e", "\x00", "\r", "\x08"):
        assert raw not in shown
    assert "\\x1b[31mRED" in shown
    assert "\\u202e" in shown
    assert sanitize_server_text("a\n b", width=10) == "a b"


def test_log_filter_rewrites_records_with_secrets() -> None:
    register_secret(SECRET)
    record = logging.LogRecord(
        "websockets.client",
        logging.DEBUG,
        "x",
        1,
        "> %s: %s",
        ("Authorization", f"Bearer {SECRET}"),
        None,
    )
    assert RedactingFilter().filter(record)
    assert SECRET not in record.getMessage()
    assert "Authorization: ***" in record.getMessage()


def test_error_text_and_run_files_never_carry_a_registered_secret(tmp_path: Path) -> None:
    planted = "planted-Secret-4f1d9c2e77"
    register_secret(planted)
    # An exception from elsewhere that quotes the secret (a library's error, a server echo)
    # is redacted when it becomes the plugin's error, message and hint alike.
    error = ScorerError(f"the scorer failed: Bearer {planted}", hint=f"token {planted}")
    http = ComfyUIHTTPError(f"500 from /prompt: {planted}", host="h")
    for exc in (error, http):
        assert planted not in str(exc)
        assert planted not in exc.message
        assert REDACTED in str(exc)

    # The writers of results.jsonl and summary.json redact whatever reaches them.
    record = CaseRecord(
        suite="s",
        case_id="c",
        prompt="p",
        prompt_text=f"a prompt with {planted}",
        config="fp8",
        config_label="FP8",
        seed=1,
        reference="bf16",
        role="candidate",
    )
    log = ResultsLog(tmp_path / "results.jsonl", "run-1")
    log.append(record, error=f"Traceback ... Authorization: Bearer {planted}")
    log.close()
    report = ReportDir(tmp_path / "report", "run-1")
    report.root.mkdir(parents=True)
    report.write_summary({"notes": [f"server said {planted}"], planted: {"x": planted}})
    for path in (log.path, report.summary_path):
        text = path.read_text(encoding="utf-8")
        assert planted not in text
        assert REDACTED in text
    assert read_results(log.path)[0]["run_id"] == "run-1"
