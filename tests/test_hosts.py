"""The one host-address grammar: what options and client accept, and that passwords never show."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from pytest_zimage_quality.hosts import (
    HostAddress,
    HostAddressError,
    parse_host,
    redact_address,
)
from pytest_zimage_quality.options import parse_host as parse_host_option


@pytest.mark.parametrize(
    ("text", "url", "base_url"),
    [
        ("gb10", "http://gb10:8188", "http://gb10:8188"),
        ("  gb10:8189 ", "http://gb10:8189", "http://gb10:8189"),
        ("[::1]:8188", "http://[::1]:8188", "http://[::1]:8188"),
        ("HTTPS://comfy.example/base/", "https://comfy.example/base", "https://comfy.example/base"),
        ("http://u:p%40ss@gb10:8188/x", "http://u:p%40ss@gb10:8188/x", "http://gb10:8188/x"),
        ("https://token@comfy.example", "https://token@comfy.example", "https://comfy.example"),
        ("u:pw@gb10", "http://u:pw@gb10:8188", "http://gb10:8188"),
        ("Simulated", "simulated", "simulated"),
    ],
)
def test_accepted_addresses_are_normalised(text: str, url: str, base_url: str) -> None:
    address = parse_host(text)
    assert address.url == url
    assert address.base_url == base_url
    assert parse_host_option(text) == address  # the option reads the same grammar


def test_credentials_are_decoded_for_the_client_and_hidden_from_everyone_else() -> None:
    address = parse_host("http://user:s3cr%40t@gb10:8188/comfy")
    assert (address.username, address.password) == ("user", "s3cr@t")
    assert address.has_credentials
    assert address.netloc == "gb10:8188"
    assert address.path == "/comfy"
    for shown in (str(address), repr(address), f"{address}", repr([address])):
        assert "s3cr" not in shown
        assert "user:***@gb10:8188" in shown
    assert not parse_host("gb10").has_credentials
    assert parse_host("simulated").simulated


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("ftp://x", "scheme 'ftp' is not supported"),
        ("gb10:port", "port 'port' is not a number"),
        ("gb10:0", "is not a number in 1-65535"),
        ("gb10:70000", "is not a number in 1-65535"),
        ("", "is not a host"),
        ("a b:1", "is not a host"),
        ("http://", "is not a host"),
        ("http://[1.2]:80", "is not a host address"),
        ("http://user:hunter2@bad host:1", "is not a host"),
        ("http://us er:hunter2@gb10", "malformed user:password@"),
        ("ftp://user:hunter2@gb10", "scheme 'ftp'"),
    ],
)
def test_refusals_name_the_cause_and_never_the_password(text: str, words: str) -> None:
    with pytest.raises(HostAddressError, match=words) as info:
        parse_host(text)
    assert "hunter2" not in str(info.value)
    with pytest.raises(argparse.ArgumentTypeError) as option_error:
        parse_host_option(text)
    assert str(option_error.value) == str(info.value)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://u:pw@h:1/p@q", "http://u:***@h:1/p@q"),
        ("u:pw@h", "u:***@h"),
        ("http://token@h", "http://token@h"),
        ("http://h:1", "http://h:1"),
    ],
)
def test_redact_address(text: str, shown: str) -> None:
    assert redact_address(text) == shown


def test_host_address_compares_by_its_url() -> None:
    assert HostAddress("http://gb10:8188") == parse_host("gb10")
    assert len({parse_host("gb10"), parse_host("http://gb10:8188/")}) == 1


def test_the_grammar_is_pure() -> None:
    probe = "import sys, pytest_zimage_quality.hosts as h; print(sorted(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "'httpx'" not in out
    assert "'pytest'" not in out
