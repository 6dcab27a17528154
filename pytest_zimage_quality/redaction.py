"""Secrets never leave, and server text never drives the terminal.

The values of ``--zimage-header`` and the password of a ``user:password@`` host are
registered here (:func:`register_secret`) by the client that sends them; from then on
:func:`redact` replaces them with ``***`` wherever they appear. Two more ways out are
closed here:

* :func:`sanitize_server_text` is the one door for text a server wrote (error bodies,
  exception messages, node names) into a message: secrets and echoed credential headers
  (``Authorization: ...``, ``Cookie: ...``) are redacted, and control characters, ANSI escapes
  and bidi overrides are shown escaped (``\\x1b``), so a hostile server cannot recolour or
  rewrite the terminal;
* :func:`install_log_redaction` puts :class:`RedactingFilter` on the loggers of httpx,
  httpcore and websockets (which log request headers at DEBUG) and on this package's, at
  every level.

:func:`check_header` refuses a header that cannot be sent as one line (CR, LF, NUL, other
control characters, non-Latin-1 text) without echoing its value.

Pure: imports neither pytest nor httpx.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import unicodedata
from urllib.parse import quote

__all__ = [
    "REDACTED",
    "SENSITIVE_HEADERS",
    "HeaderValueError",
    "RedactingFilter",
    "check_header",
    "install_log_redaction",
    "redact",
    "register_header",
    "register_secret",
    "sanitize_server_text",
]

REDACTED = "***"

#: Headers whose values are credentials whoever sends them; redacted in any echo.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
        "x-access-token",
    }
)

#: Shorter registered values are redacted only where they follow their header's name:
#: replacing every "1" of a message would make it unreadable.
MIN_SECRET_LENGTH = 8

#: The loggers that see request headers or URLs (and this package's own).
LOGGER_PREFIXES = ("httpx", "httpcore", "websockets", "pytest_zimage_quality")

_lock = threading.Lock()
_secrets: set[str] = set()
_header_names: set[str] = set(SENSITIVE_HEADERS)
_pattern: re.Pattern[str] | None = None
_echo: re.Pattern[str] | None = None

# C0/C1 controls except tab and newline, DEL, and the bidi overrides/isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


class HeaderValueError(ValueError):
    """A header that cannot be sent; the message names the header, never its value."""


def check_header(name: str, value: str) -> None:
    """Refuse a header value HTTP cannot carry as one line, without echoing it.

    CR or LF would split the header (and print the credential where a line is cut), NUL
    and other control characters are refused by HTTP, and a value outside Latin-1 cannot
    be encoded on the wire.
    """
    if "\r" in value or "\n" in value:
        raise HeaderValueError(
            f"the value of header {name!r} contains a line break (CR or LF); a header is one "
            "line: remove the break (a Basic credential is base64 without wrapping, "
            "e.g. base64 -w0)"
        )
    if any(unicodedata.category(ch) == "Cc" and ch != "\t" for ch in value):
        raise HeaderValueError(
            f"the value of header {name!r} contains a control character; remove it"
        )
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        raise HeaderValueError(
            f"the value of header {name!r} has characters outside Latin-1, which HTTP "
            "headers cannot carry; percent- or base64-encode it"
        ) from None


def register_secret(value: str) -> None:
    """Redact ``value`` (and its percent-encoded form) from now on, process-wide."""
    value = value.strip()
    if not value:
        return
    forms = {value, quote(value, safe=""), quote(value, safe="@:")}
    with _lock:
        _secrets.update(forms)
        _rebuild()


def register_header(name: str, value: str) -> None:
    """Redact a header the client sends: its value anywhere, and after its name in echoes.

    An ``Authorization`` value also registers its token, and a Basic credential its decoded
    ``user:password`` and password, which a server may echo instead.
    """
    with _lock:
        _header_names.add(name.strip().lower())
    if len(value.strip()) >= MIN_SECRET_LENGTH:
        register_secret(value)
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if token and len(token) >= MIN_SECRET_LENGTH:
        register_secret(token)
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(token, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                return
            register_secret(decoded)
            password = decoded.partition(":")[2]
            if len(password) >= MIN_SECRET_LENGTH:
                register_secret(password)
    with _lock:
        _rebuild()


def _rebuild() -> None:
    global _pattern, _echo
    long = sorted((s for s in _secrets if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)
    _pattern = re.compile("|".join(map(re.escape, long))) if long else None
    names = "|".join(sorted(map(re.escape, _header_names)))
    # "Name: value" up to the end of the line (or a quote/comma/brace a JSON echo ends with)
    _echo = re.compile(rf"(?i)(\b(?:{names})\b[\"']?\s*[:=]\s*[\"']?)([^\r\n\"',}}]+)")


with _lock:
    _rebuild()


def redact(text: str) -> str:
    """``text`` with every registered secret and credential-header echo replaced by ``***``."""
    pattern, echo = _pattern, _echo
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if echo is not None:
        text = echo.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sanitize_server_text(text: object, width: int | None = None) -> str:
    """Server-written ``text`` made safe for a message: redacted, controls escaped.

    With ``width`` the text is also put on one line and cut to ``width`` characters.
    """
    out = _UNSAFE.sub(_escape, redact(str(text)))
    if width is not None:
        out = " ".join(out.split())
        if len(out) > width:
            out = out[: width - 3] + "..."
    return out


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message with :func:`redact` (it never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem, not ours
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Put the redacting filter on every logger of httpx, httpcore, websockets and this
    package (a logger's filter sees only its own records, so each one gets it)."""
    names = {
        "httpx",
        "httpcore.connection",
        "httpcore.http11",
        "httpcore.http2",
        "httpcore.proxy",
        "httpcore.socks",
        "websockets.client",
        "websockets.server",
        "pytest_zimage_quality.comfyui",
    }
    names.update(
        name
        for name in list(logging.Logger.manager.loggerDict)
        if name.split(".")[0] in LOGGER_PREFIXES
    )
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
