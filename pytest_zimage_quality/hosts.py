"""One grammar for a ComfyUI host address, shared by the options and the client.

``--zimage-host``, ``zimage_host``, ``$ZIMAGE_HOST`` and ``ComfyUIClient(base_url)`` all read
an address through :func:`parse_host`, so an address the options accept is one the client
can use, and the other way round:

* ``simulated`` (any case): the in-process fake ComfyUI of a dry run;
* ``host`` or ``host:port`` (``[v6]:port`` for IPv6): plain http, port 8188 when none is given
  (ComfyUI's default);
* ``http(s)://[user[:password]@]host[:port][/path]``: the scheme's default port when none is
  given; a path prefix for a server behind a reverse proxy; ``user:password@`` becomes HTTP
  basic auth (percent-encode ``@``, ``:`` or ``/`` inside them).

The password never leaves this module in clear text for display: ``str()``, ``repr()`` and
every error message show it as ``***``. Only :attr:`HostAddress.url` and
:attr:`HostAddress.password` carry it, for the client that authenticates with it.

Pure: imports neither pytest nor httpx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

__all__ = [
    "DEFAULT_PORT",
    "SIMULATED_HOST",
    "HostAddress",
    "HostAddressError",
    "parse_host",
    "redact_address",
]

#: ``simulated`` starts the in-process fake ComfyUI (a dry run, no GPU).
SIMULATED_HOST = "simulated"
#: The port ComfyUI listens on unless told otherwise (``main.py --port``).
DEFAULT_PORT = 8188

_SCHEME_RE = re.compile(r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://)?(?P<rest>.*)$", re.DOTALL)
_HOSTNAME_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+)$")
_USERINFO_RE = re.compile(r"^[^\s/?#]*$")
REDACTED = "***"


class HostAddressError(ValueError):
    """Raised for text that is not a host address; the message shows no password.

    ``shown`` is the offending text with its password redacted, ``reason`` what is wrong.
    """

    def __init__(self, shown: str, reason: str) -> None:
        super().__init__(f"{shown!r}{reason}")
        self.shown = shown
        self.reason = reason


@dataclass(frozen=True)
class HostAddress:
    """A ComfyUI host as :func:`parse_host` normalises it, or :data:`SIMULATED_HOST`.

    ``url`` is the normalised address and carries ``user:password@`` when given (the client
    needs them). Print the address, never ``url``: ``str()`` and ``repr()`` redact the
    password.
    """

    url: str = field(repr=False)

    @property
    def simulated(self) -> bool:
        """True for the in-process fake ComfyUI of a dry run."""
        return self.url == SIMULATED_HOST

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def netloc(self) -> str:
        """``host[:port]`` without credentials (IPv6 in brackets)."""
        return urlsplit(self.url).netloc.rpartition("@")[2]

    @property
    def path(self) -> str:
        """The path prefix without a trailing slash (``""`` for none)."""
        return urlsplit(self.url).path.rstrip("/")

    @property
    def username(self) -> str:
        """The user of ``user:password@``, decoded (``""`` for none)."""
        return unquote(urlsplit(self.url).username or "")

    @property
    def password(self) -> str:
        """The password of ``user:password@``, decoded (``""`` for none). Never print it."""
        return unquote(urlsplit(self.url).password or "")

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password)

    @property
    def base_url(self) -> str:
        """``scheme://host[:port][/path]`` without credentials: what messages name."""
        if self.simulated:
            return SIMULATED_HOST
        return f"{self.scheme}://{self.netloc}{self.path}"

    def __str__(self) -> str:
        return redact_address(self.url)

    def __repr__(self) -> str:
        return f"HostAddress({str(self)!r})"


def redact_address(text: str) -> str:
    """``text`` with the password of any ``user:password@`` shown as ``***``."""
    match = _SCHEME_RE.match(text)
    assert match is not None
    prefix = text[: match.start("rest")]
    authority, slash, path = match.group("rest").partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        return text
    user, colon, _password = userinfo.partition(":")
    shown = f"{user}:{REDACTED}" if colon else user
    return f"{prefix}{shown}@{hostport}{slash}{path}"


def parse_host(text: str) -> HostAddress:
    """Read ``text`` as a host address (see the module docstring); normalise it.

    Raises :class:`HostAddressError` with a one-line reason that never shows the password.
    """
    value = text.strip()
    shown = redact_address(text)
    if value.lower() == SIMULATED_HOST:
        return HostAddress(SIMULATED_HOST)
    match = _SCHEME_RE.match(value)
    assert match is not None
    scheme = (match.group("scheme") or "http").lower()
    if scheme not in ("http", "https"):
        raise HostAddressError(
            shown, f": scheme {scheme!r} is not supported (use host:port, http:// or https://)"
        )
    authority, _, path = match.group("rest").partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if at and not _USERINFO_RE.match(userinfo):
        raise HostAddressError(
            shown, " has a malformed user:password@ part (percent-encode its special characters)"
        )
    host, port = hostport, ""
    if hostport.startswith("["):  # [ipv6]:port
        close = hostport.find("]")
        host, port = (
            hostport[: close + 1],
            hostport[close + 2 :] if close + 1 < len(hostport) else "",
        )
    elif hostport.count(":") == 1:
        host, port = hostport.split(":")
    if not host or not _HOSTNAME_RE.match(host):
        raise HostAddressError(shown, " is not a host (write host:port or http://host:port)")
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise HostAddressError(shown, f": port {port!r} is not a number in 1-65535")
    elif match.group("scheme") is None:
        port = str(DEFAULT_PORT)
    url = (
        f"{scheme}://"
        + (f"{userinfo}@" if at else "")
        + host
        + (f":{port}" if port else "")
        + (f"/{path.rstrip('/')}" if path.strip("/") else "")
    )
    try:
        urlsplit(url).port  # noqa: B018 - the stdlib's own check (IPv6 literals, port range)
    except ValueError as exc:
        raise HostAddressError(shown, f" is not a host address ({exc})") from None
    return HostAddress(url)
