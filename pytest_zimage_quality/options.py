"""The pytest side of the options: register each row of ``settings.OPTIONS`` as a
``--zimage-*`` flag and an ini key, and read them back into one frozen ``Settings``.

Precedence, applied here and nowhere else: command line > environment > ini > suite file
(gate parameters, seeds, revision: ``Settings.gate_for``) > built-in default. A bad value is
a one-line usage error before any work starts: argparse reports command-line values,
``pytest.UsageError`` environment and ini values. Only ``resolve_settings`` reads options.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

from .settings import (
    OPTIONS,
    REMOVED_OPTIONS,
    SIMULATED_HOST,
    GateParameters,
    HostSpec,
    Option,
    Settings,
    parse_header,
    parse_host,
)

__all__ = [
    "SIMULATED_HOST",
    "GateParameters",
    "HostSpec",
    "Settings",
    "parse_header",
    "parse_host",
    "register_options",
    "resolve_settings",
]

T = TypeVar("T")


def register_options(parser: pytest.Parser) -> None:
    """Add the ``zimage`` option group and the matching ini keys, one per table row."""
    group = parser.getgroup("zimage", "Z-Image quality gate")
    for opt in OPTIONS.values():
        # default=None on the command line: it tells "not given" apart, so the ini key and
        # the suite file can still decide (the real default is in the help text).
        if opt.flag is not None and opt.kind == "switch":
            group.addoption(
                opt.flag, action="store_true", default=None, dest=opt.dest, help=opt.full_help
            )
        elif opt.flag is not None:
            group.addoption(
                opt.flag,
                action="append" if opt.kind == "list" else "store",
                type=opt.parse,
                default=None,
                dest=opt.dest,
                metavar=opt.metavar,
                help=opt.full_help,
            )
        ini_type: Literal["linelist", "string"] = "linelist" if opt.kind == "list" else "string"
        parser.addini(
            opt.ini, opt.full_help, type=ini_type, default=[] if opt.kind == "list" else ""
        )
    # Removed options stay registered (hidden) so that a leftover use is one clear usage
    # error naming the replacement, not argparse's "unrecognized arguments".
    for name, message in REMOVED_OPTIONS.items():
        group.addoption(
            "--zimage-" + name.replace("_", "-"),
            dest="zimage_removed_" + name,
            default=None,
            help=argparse.SUPPRESS,
        )
        parser.addini("zimage_" + name, f"removed. {message}.", default="")


def resolve_settings(config: pytest.Config) -> Settings:
    """Every option after precedence, read once in ``pytest_configure``."""
    for name, message in REMOVED_OPTIONS.items():
        if config.getoption("zimage_removed_" + name) is not None or config.getini(
            "zimage_" + name
        ):
            raise pytest.UsageError(message)
    values = {name: _read(config, opt) for name, opt in OPTIONS.items()}
    hosts: tuple[HostSpec, ...] = values["hosts"]
    if len(hosts) > 1 and any(h.simulated for h in hosts):
        raise pytest.UsageError(
            "--zimage-host=simulated cannot be combined with real hosts: "
            "a dry run and a measurement must not mix"
        )
    return Settings(**values, rootpath=config.rootpath)


def _read(config: pytest.Config, opt: Option) -> Any:
    """One option: command line, then environment, then ini, then its ``Settings`` default."""
    cli = config.getoption(opt.dest) if opt.flag is not None else None
    if cli is not None:
        if opt.kind == "list":
            return _dedupe(cli)
        if opt.kind == "path":
            return Path(cli).expanduser().absolute()
        return cli
    env = os.environ.get(opt.env, "").strip() if opt.env else ""
    if env:
        where = f"${opt.env}"
        if opt.kind == "list":
            return _dedupe(
                _parse(opt.parse, part, where) for part in re.split(r"[,\s]+", env) if part
            )
        return _parse(opt.parse, env, where)
    raw = config.getini(opt.ini)
    where = f"ini option {opt.ini}"
    if opt.kind == "list":
        items = _dedupe(_parse(opt.parse, line, where) for line in raw if line.strip())
        return items or opt.settings_default
    if raw:
        if opt.kind == "path":
            base = config.inipath.parent if config.inipath else config.rootpath
            return (base / Path(raw).expanduser()).absolute()
        return _parse(opt.parse, raw, where)
    if opt.ini_fallback is not None:
        return bool(config.getini(opt.ini_fallback))
    return opt.settings_default


def _parse(parse: Callable[[str], T], text: str, where: str) -> T:
    try:
        return parse(text)
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"{where}: {exc}") from None


def _dedupe(items: Iterable[T]) -> tuple[T, ...]:
    return tuple(dict.fromkeys(items))
