"""The HTTP boundary: one ``httpx.Client``, retries, and every transport error translated.

All of the client's HTTP goes through :class:`Transport`. It retries idempotent requests
(connection errors, resets, 502/503/504) with the backoff of :class:`Timeouts`, and it is the
one place where httpx's exceptions and unexpected statuses become the package's error tree
(:mod:`pytest_zimage_quality.errors`), in the server's own words and naming the host.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from ..errors import ComfyUIError, ComfyUIHTTPError, ComfyUIProtocolError, ComfyUIUnreachableError
from ._timeouts import Timeouts

__all__ = ["RETRY_STATUSES", "Transport", "excerpt", "is_tls_error", "ssl_context"]

log = logging.getLogger("pytest_zimage_quality.comfyui")

#: Statuses a proxy or a restarting server answers; the request is worth repeating.
RETRY_STATUSES = frozenset({502, 503, 504})


def excerpt(text: str, width: int = 300) -> str:
    """``text`` on one line, cut to ``width`` characters (server text quoted in messages)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


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


class Transport:
    """HTTP to one host. ``host`` (no credentials) is what every message names.

    ``closing`` is the client's stop signal: set, it cuts backoff pauses short and makes
    further requests fail with a :class:`ComfyUIError` saying the client is closed.
    """

    def __init__(
        self,
        host: str,
        *,
        timeouts: Timeouts,
        closing: threading.Event,
        auth: httpx.BasicAuth | None = None,
        headers: list[tuple[str, str]] | None = None,
        transport: httpx.BaseTransport | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.timeouts = timeouts
        self._closing = closing
        self._http = httpx.Client(
            base_url=host,
            auth=auth,
            headers=headers or [],
            timeout=httpx.Timeout(timeouts.http, connect=timeouts.connect),
            transport=transport,
            verify=tls if tls is not None else True,
            follow_redirects=False,
        )

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    def close(self) -> None:
        self._http.close()

    def check_open(self) -> None:
        if self.closed:
            raise ComfyUIError(f"the client for {self.host} is closed", host=self.host)

    def sleep(self, attempt: int) -> None:
        """The backoff pause before retry ``attempt + 1``; a close ends it at once."""
        self._closing.wait(self.timeouts.retry_delay(attempt))

    def post_once(self, path: str, content: bytes) -> httpx.Response:
        """One JSON POST, not retried and not translated: the caller decides what a failure
        means (POST /prompt must not queue a graph twice)."""
        return self._http.post(path, content=content, headers={"Content-Type": "application/json"})

    def send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        body: object = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """One request, retried when idempotent; transport errors become ComfyUIErrors."""
        self.check_open()
        attempts = self.timeouts.retries + 1 if idempotent else 1
        content = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if content is not None else None
        for attempt in range(attempts):
            try:
                response = self._http.request(
                    method, path, params=params, content=content, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt + 1 < attempts and self.retryable(exc) and not self.closed:
                    log.debug("%s on %s failed (%s); retrying", what, self.host, exc)
                    self.sleep(attempt)
                    continue
                raise self.translate(exc, what) from exc
            except RuntimeError as exc:  # httpx refuses requests once the client is closed
                raise ComfyUIError(
                    f"{what}: the client for {self.host} is closed", host=self.host
                ) from exc
            if response.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                log.debug("%s on %s: HTTP %s; retrying", what, self.host, response.status_code)
                self.sleep(attempt)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def retryable(exc: httpx.TransportError) -> bool:
        if isinstance(exc, httpx.ConnectError) and is_tls_error(exc):
            return False  # a certificate problem does not go away by retrying
        return isinstance(
            exc,
            (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.ReadTimeout,
                httpx.ReadError,
                httpx.WriteError,
                httpx.RemoteProtocolError,
                httpx.PoolTimeout,
            ),
        )

    def translate(self, exc: httpx.TransportError, what: str) -> ComfyUIError:
        host, text = self.host, str(exc) or type(exc).__name__
        if isinstance(exc, httpx.ConnectTimeout):
            return ComfyUIUnreachableError(f"{what}: connecting to {host} timed out", host=host)
        if isinstance(exc, httpx.ConnectError):
            if is_tls_error(exc):
                return ComfyUIUnreachableError(
                    f"{what}: the TLS handshake with {host} failed: {text}",
                    host=host,
                    hint="check the server's certificate, or give the CA bundle "
                    "(verify_tls=<path>); use http:// if the server does not speak TLS",
                )
            lowered = text.lower()
            if any(
                s in lowered
                for s in (
                    "name or service",
                    "nodename",
                    "getaddrinfo",
                    "name resolution",
                    "no address",
                )
            ):
                return ComfyUIUnreachableError(
                    f"{what}: cannot resolve the host name of {host}: {text}",
                    host=host,
                    hint="check the host name in --zimage-host",
                )
            return ComfyUIUnreachableError(
                f"{what}: cannot connect to ComfyUI at {host}: {text}", host=host
            )
        if isinstance(exc, httpx.TimeoutException):
            return ComfyUIUnreachableError(
                f"{what}: {host} did not answer within {self.timeouts.http:g} s",
                host=host,
                hint="the server may be overloaded or hung; check its console",
            )
        if isinstance(exc, httpx.RemoteProtocolError):
            if "disconnect" in text.lower():
                return ComfyUIUnreachableError(
                    f"{what}: {host} closed the connection without a reply ({text})", host=host
                )
            return ComfyUIProtocolError(
                f"{what}: {host} did not answer in valid HTTP ({text})", host=host
            )
        return ComfyUIUnreachableError(
            f"{what}: talking to {host} failed: {type(exc).__name__}: {text}", host=host
        )

    def status_error(self, response: httpx.Response, what: str) -> ComfyUIHTTPError:
        status = response.status_code
        body = excerpt(response.text) if response.content else "(empty body)"
        message = f"{what}: {self.host} answered HTTP {status}: {body}"
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
            location = response.headers.get("location", "?")
            message = f"{what}: {self.host} redirected to {location} (HTTP {status})"
            hint = "point --zimage-host at the ComfyUI server itself (a login page redirects)"
        elif status >= 500:
            hint = "the server failed; its console has the traceback"
        return ComfyUIHTTPError(message, host=self.host, status=status, hint=hint)

    def json_of(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            kind = response.headers.get("content-type", "no content type")
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered HTTP {response.status_code} with {kind}, not "
                f"JSON: {excerpt(response.text, 120) or '(empty body)'}",
                host=self.host,
            ) from exc

    def get_json(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Any:
        response = self.send("GET", path, what=what, params=params)
        if response.status_code != 200:
            raise self.status_error(response, what)
        return self.json_of(response, what)

    def post(self, path: str, body: object, what: str) -> None:
        response = self.send("POST", path, what=what, body=body)
        if response.status_code != 200:
            raise self.status_error(response, what)

    def expect_dict(self, value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered {excerpt(json.dumps(value), 120)}, "
                "not a JSON object",
                host=self.host,
            )
        return value
