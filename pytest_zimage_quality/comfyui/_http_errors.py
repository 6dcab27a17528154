"""Where httpx's exceptions and unexpected HTTP statuses become the package's error tree
(:mod:`pytest_zimage_quality.errors`): one message naming the host, in the server's own
words (sanitized), with a hint naming the fix; and which failures are worth a retry."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from ..errors import ComfyUIError, ComfyUIHTTPError, ComfyUIProtocolError, ComfyUIUnreachableError
from ..redaction import sanitize_server_text
from ._timeouts import Timeouts

__all__ = [
    "NAME_ERRORS",
    "excerpt",
    "is_tls_error",
    "refused",
    "retryable",
    "ssl_context",
    "status_error",
    "translate",
]

#: What a failed name lookup says (the host name is wrong: retrying will not help).
NAME_ERRORS = ("name or service", "nodename", "getaddrinfo", "name resolution", "no address")


def excerpt(text: str, width: int = 300) -> str:
    """Server ``text`` on one line, cut to ``width`` characters, redacted and with control
    characters escaped (server text quoted in messages goes through here)."""
    return sanitize_server_text(text, width)


def ssl_context(verify: bool | str | ssl.SSLContext) -> ssl.SSLContext:
    """The TLS context for ``verify_tls``: a context as given, a CA file or directory, or
    the default trust store (certifi, as httpx uses), or no verification at all."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        if Path(verify).is_dir():
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify)


def is_tls_error(exc: BaseException) -> bool:
    """True when ``exc`` (or what caused it) is a TLS failure: retrying will not help."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return "SSL" in text or "CERTIFICATE" in text.upper()


def refused(exc: httpx.TransportError) -> bool:
    """A connection that was never made: the request did not reach the server."""
    if not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)) or is_tls_error(exc):
        return False
    return not any(s in str(exc).lower() for s in NAME_ERRORS)


def retryable(exc: httpx.TransportError) -> bool:
    """A reset or a refusal is worth repeating; a timeout (a silent server) is not."""
    if isinstance(exc, httpx.ConnectError) and is_tls_error(exc):
        return False  # a certificate problem does not go away by retrying
    return isinstance(
        exc,
        (
            httpx.ConnectError,
            httpx.ReadError,
            httpx.WriteError,
            httpx.RemoteProtocolError,
        ),
    )


def translate(
    exc: httpx.TransportError,
    what: str,
    *,
    host: str,
    timeouts: Timeouts,
    gone: bool,
    answered: bool,
) -> ComfyUIError:
    """httpx's ``exc`` as the package's error, naming ``host`` and (once the server had
    ``answered``) that it went away; ``gone``: it refused connections past the outage budget."""
    text = sanitize_server_text(str(exc) or type(exc).__name__, 300)
    went_away = (
        "the server went away during the run (stopped, crashed or restarting): check "
        "its console or process, then rerun"
    )
    if refused(exc) and gone:
        return ComfyUIUnreachableError(
            f"{what}: ComfyUI at {host} has refused connections for longer than the "
            f"outage budget ({timeouts.outage:g} s): {text}",
            host=host,
            hint=went_away if answered else None,
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return ComfyUIUnreachableError(
            f"{what}: connecting to {host} timed out after {timeouts.connect:g} s",
            host=host,
            hint=went_away if answered else None,
        )
    if isinstance(exc, httpx.ConnectError):
        if is_tls_error(exc):
            return ComfyUIUnreachableError(
                f"{what}: the TLS handshake with {host} failed: {text}",
                host=host,
                hint="check the server's certificate, or give the CA bundle "
                "(verify_tls=<path>); use http:// if the server does not speak TLS",
            )
        if any(s in text.lower() for s in NAME_ERRORS):
            return ComfyUIUnreachableError(
                f"{what}: cannot resolve the host name of {host}: {text}",
                host=host,
                hint="check the host name in --zimage-host",
            )
        return ComfyUIUnreachableError(
            f"{what}: cannot connect to ComfyUI at {host}: {text}",
            host=host,
            hint=went_away if answered else None,
        )
    if isinstance(exc, httpx.TimeoutException):
        return ComfyUIUnreachableError(
            f"{what}: {host} did not answer within {timeouts.http:g} s",
            host=host,
            hint="the server accepted the connection but sent nothing: it may be "
            "overloaded or hung; check its console",
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        if "disconnect" in text.lower():
            return ComfyUIUnreachableError(
                f"{what}: {host} closed the connection without a reply ({text})",
                host=host,
                hint=went_away if answered else None,
            )
        return ComfyUIProtocolError(
            f"{what}: {host} did not answer in valid HTTP ({text})", host=host
        )
    return ComfyUIUnreachableError(
        f"{what}: talking to {host} failed: {type(exc).__name__}: {text}",
        host=host,
        hint=went_away if answered else None,
    )


def status_error(response: httpx.Response, what: str, *, host: str) -> ComfyUIHTTPError:
    """An unexpected HTTP status as one error naming ``host``, with the fix for the usual
    ones (authentication, a redirect to a login page, a server failure)."""
    status = response.status_code
    body = excerpt(response.text) if response.content else "(empty body)"
    message = f"{what}: {host} answered HTTP {status}: {body}"
    hint = None
    if status in (401, 407):
        hint = "the host wants authentication: pass it with --zimage-header 'Name: value'"
    elif status == 403:
        hint = (
            "the host refused the request: check the authentication headers "
            "(--zimage-header), or start ComfyUI with --enable-cors-header if a proxy "
            "sends an Origin header"
        )
    elif 300 <= status < 400:
        location = sanitize_server_text(response.headers.get("location", "?"), 200)
        message = f"{what}: {host} redirected to {location} (HTTP {status})"
        hint = "point --zimage-host at the ComfyUI server itself (a login page redirects)"
    elif status >= 500:
        hint = "the server failed; its console has the traceback"
    return ComfyUIHTTPError(message, host=host, status=status, hint=hint)
