"""The HTTP boundary: one ``httpx.Client``, retries, deadlines, and every error translated.

All of the client's HTTP goes through :class:`Transport`. Each request has one deadline
for the whole of it (connect, headers and body) and a cap on its body's size
(:mod:`._body`). Idempotent requests are retried after resets and 502/503/504 with the
backoff of :class:`Timeouts`; a server that refuses connections is retried for the outage
budget (a restart), after which the transport says the server went away and fails fast.
It is the one place where httpx's exceptions and unexpected statuses meet the package's
error tree (:mod:`pytest_zimage_quality.errors`): :mod:`._http_errors` words each one, in the
server's own words (sanitized) and naming the host.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Collection, Mapping
from typing import Any

import httpx

from ..errors import ComfyUIError, ComfyUIHTTPError, ComfyUIProtocolError, ComfyUIUnreachableError
from ..redaction import sanitize_server_text
from ._body import BodyTooLarge, BodyTooSlow, UnsupportedEncoding, read_body
from ._http_errors import excerpt, refused, retryable, status_error, translate
from ._timeouts import JSON_BODY_LIMIT, Timeouts

__all__ = ["RETRY_STATUSES", "Transport"]

log = logging.getLogger("pytest_zimage_quality.comfyui")

#: Statuses a proxy or a restarting server answers; the request is worth repeating.
RETRY_STATUSES = frozenset({502, 503, 504})


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
        self._lock = threading.Lock()
        #: A reply has come from this host: a refusal now means it went away.
        self.answered = False
        self._down_since: float | None = None
        self._gone = False
        #: Times the host started refusing connections after answering (restarts seen).
        self.outages = 0
        sent = list(headers or [])
        if not any(name.lower() == "accept-encoding" for name, _ in sent):
            sent.append(("Accept-Encoding", "identity"))  # no body inflates past its cap
        self._http = httpx.Client(
            base_url=host,
            auth=auth,
            headers=sent,
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

    # -- the outage budget --------------------------------------------------------------

    def _answered(self) -> None:
        with self._lock:
            self.answered = True
            self._down_since = None
            self._gone = False

    def _outage_left(self) -> float:
        """Seconds left to wait for a refusing server (0 once it was declared gone)."""
        now = time.monotonic()
        with self._lock:
            if self._gone:
                return 0.0
            if self._down_since is None:
                self._down_since = now
                self.outages += int(self.answered)
            left = self._down_since + self.timeouts.outage - now
            if left <= 0:
                self._gone = True
            return max(0.0, left)

    def wait_out_refusal(
        self, exc: httpx.TransportError, attempt: int, deadline: float | None = None
    ) -> bool:
        """After a refused connection to a host that answered before (a restart): pause and
        return True while the outage budget (and ``deadline``) leave time to try again;
        False when the caller should give up. A host that never answered gets the plain
        retries (a wrong address should fail fast)."""
        if self.closed or not self.answered or not refused(exc):
            return False
        left = self._outage_left()
        if deadline is not None:
            left = min(left, deadline - time.monotonic())
        if left <= 0:
            return False
        log.debug("%s refused a connection (%s); retrying", self.host, exc)
        self._closing.wait(min(self.timeouts.retry_delay(attempt), left))
        return True

    @property
    def gone(self) -> bool:
        """The server refused connections for longer than the outage budget."""
        with self._lock:
            return self._gone

    # -- requests -----------------------------------------------------------------------

    def _timeout(self, deadline: float) -> httpx.Timeout:
        left = max(0.01, deadline - time.monotonic())
        return httpx.Timeout(
            min(self.timeouts.http, left), connect=min(self.timeouts.connect, left)
        )

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
        limit: int,
        deadline: float,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """One request, its body read whole under ``limit`` and ``deadline``."""
        request = self._http.build_request(
            method,
            path,
            params=params,
            content=content,
            headers=headers,
            timeout=timeout or self._timeout(deadline),
        )
        response = self._http.send(request, stream=True)
        body = read_body(response, limit=limit, deadline=deadline)
        kept = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        self._answered()
        return httpx.Response(response.status_code, headers=kept, content=body, request=request)

    def post_once(self, path: str, content: bytes) -> httpx.Response:
        """One JSON POST, not retried and not translated: the caller decides what a failure
        means (POST /prompt must not queue a graph twice). Its reply is awaited for
        ``submit_reply`` seconds only: the caller looks for a silent prompt on the server."""
        self.check_open()
        wait = self.timeouts.submit_reply
        deadline = time.monotonic() + self.timeouts.http
        try:
            return self._exchange(
                "POST",
                path,
                params=None,
                content=content,
                headers={"Content-Type": "application/json"},
                limit=JSON_BODY_LIMIT,
                deadline=deadline,
                timeout=httpx.Timeout(wait, connect=min(self.timeouts.connect, wait)),
            )
        except (BodyTooLarge, BodyTooSlow, UnsupportedEncoding) as exc:
            raise httpx.ReadTimeout(str(exc)) from exc
        except RuntimeError as exc:  # httpx refuses requests once the client is closed
            if not self._http.is_closed:
                raise
            raise ComfyUIError(f"POST {path}: the client for {self.host} is closed") from exc

    def send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        body: object = None,
        idempotent: bool = True,
        limit: int = JSON_BODY_LIMIT,
        retry_statuses: Collection[int] = RETRY_STATUSES,
        deadline: float | None = None,
    ) -> httpx.Response:
        """One request, retried when idempotent; transport errors become ComfyUIErrors.

        Each attempt must end (body included) within ``http`` seconds, and all attempts
        by ``deadline`` when one is given. A refused connection is retried for the outage
        budget; a reset or a status in ``retry_statuses`` ``retries`` times; a silent
        server (a timeout) is not retried.
        """
        self.check_open()
        attempts = self.timeouts.retries + 1 if idempotent else 1
        content = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempt = 0
        while True:
            start = time.monotonic()
            attempt_deadline = start + self.timeouts.http
            if deadline is not None:
                attempt_deadline = min(attempt_deadline, deadline)
            try:
                response = self._exchange(
                    method,
                    path,
                    params=params,
                    content=content,
                    headers=headers,
                    limit=limit,
                    deadline=attempt_deadline,
                )
            except httpx.TransportError as exc:
                if self.closed:
                    raise self.translate(exc, what) from exc
                if refused(exc) and self.answered:
                    if idempotent and self.wait_out_refusal(exc, attempt, deadline):
                        attempt += 1
                        continue
                elif attempt + 1 < attempts and self.retryable(exc) and not self._past(deadline):
                    log.debug("%s on %s failed (%s); retrying", what, self.host, exc)
                    self.sleep(attempt)
                    attempt += 1
                    continue
                raise self.translate(exc, what) from exc
            except BodyTooSlow as exc:
                raise ComfyUIUnreachableError(
                    f"{what}: {self.host} did not send its whole reply within "
                    f"{attempt_deadline - start:.3g} s ({exc})",
                    host=self.host,
                    hint="the server or the network is stalling; check the server's console",
                ) from exc
            except BodyTooLarge as exc:
                raise ComfyUIProtocolError(
                    f"{what}: {self.host} sent more than {exc.limit:,} bytes; refused",
                    host=self.host,
                    hint="the reply is far larger than the request can explain: is this "
                    "host ComfyUI, and does the graph ask for this image size?",
                ) from exc
            except UnsupportedEncoding as exc:
                raise ComfyUIProtocolError(
                    f"{what}: {self.host} answered with {exc}, which the client did not ask for",
                    host=self.host,
                ) from exc
            except RuntimeError as exc:  # httpx refuses requests once the client is closed
                if not self._http.is_closed:
                    raise
                raise ComfyUIError(
                    f"{what}: the client for {self.host} is closed", host=self.host
                ) from exc
            if (
                response.status_code in retry_statuses
                and attempt + 1 < attempts
                and not self._past(deadline)
            ):
                log.debug("%s on %s: HTTP %s; retrying", what, self.host, response.status_code)
                self.sleep(attempt)
                attempt += 1
                continue
            return response

    @staticmethod
    def _past(deadline: float | None) -> bool:
        return deadline is not None and time.monotonic() >= deadline

    @staticmethod
    def retryable(exc: httpx.TransportError) -> bool:
        """A reset or a refusal is worth repeating; a timeout (a silent server) is not."""
        return retryable(exc)

    def translate(self, exc: httpx.TransportError, what: str) -> ComfyUIError:
        return translate(
            exc,
            what,
            host=self.host,
            timeouts=self.timeouts,
            gone=self.gone,
            answered=self.answered,
        )

    def status_error(self, response: httpx.Response, what: str) -> ComfyUIHTTPError:
        return status_error(response, what, host=self.host)

    def json_of(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            kind = sanitize_server_text(response.headers.get("content-type", "no content type"), 80)
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered HTTP {response.status_code} with {kind}, not "
                f"JSON: {excerpt(response.text, 120) or '(empty body)'}",
                host=self.host,
            ) from exc
        except RecursionError as exc:
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered JSON nested too deeply to read", host=self.host
            ) from exc

    def get_json(
        self,
        path: str,
        what: str,
        params: Mapping[str, str] | None = None,
        *,
        deadline: float | None = None,
    ) -> Any:
        response = self.send("GET", path, what=what, params=params, deadline=deadline)
        if response.status_code != 200:
            raise self.status_error(response, what)
        return self.json_of(response, what)

    def post(self, path: str, body: object, what: str, *, deadline: float | None = None) -> None:
        response = self.send("POST", path, what=what, body=body, deadline=deadline)
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
