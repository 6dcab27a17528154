"""The generic readers of a suite file's TOML values: a table, a required key, a string,
a number in range, a key usable in test ids and file names, no unknown keys, a workflow input.
Each problem is one ``SuiteError`` naming the file, the key (escaped) and the fix."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import SuiteError
from ..workflow import InputRef, Workflow

__all__ = ["KEY_RULE", "TableReader", "key_problem", "kind"]

#: What a prompt or config key may not contain: it names tests, report rows and files.
KEY_FORBIDDEN = frozenset("-/\\[]:")
#: Characters that reorder the text around them (Trojan Source, CVE-2021-42574).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
KEY_RULE = (
    "non-empty, without '..', spaces, control or bidi-override characters, or any of - / \\ [ ] :"
)


class TableReader:
    """Reads values of the suite file at ``path``; ``error`` makes its ``SuiteError``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def error(self, key: str, message: str, hint: str) -> SuiteError:
        # A key of the file may hold control or bidi characters: show them escaped.
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in key)
        return SuiteError(message, path=self.where, key=shown, hint=hint)

    # -- generic readers ------------------------------------------------------------------
    def table(self, value: object, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(
                key, f"expected a table, got {kind(value)}", "see docs/suite-format.md"
            )
        return value

    def require(self, table: Mapping[str, Any], name: str, key: str, hint: str) -> Any:
        if name not in table:
            raise self.error(key, f"missing required key {name!r}", hint)
        return table[name]

    def string(self, value: object, key: str, *, allow_empty: bool = False) -> str:
        if not isinstance(value, str) or (not allow_empty and not value.strip()):
            raise self.error(
                key, f"expected a non-empty string, got {kind(value)}", "quote the value"
            )
        return value

    def number(self, value: object, key: str, *, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {kind(value)}", "write e.g. 0.04")
        if not low <= float(value) <= high:
            raise self.error(
                key, f"{value} is out of range [{low}, {high}]", "pick a value in range"
            )
        return float(value)

    def ident(self, value: object, key: str, what: str) -> str:
        text = self.string(value, key)
        problem = key_problem(text)
        if problem:
            raise self.error(
                key,
                f"{what} key {text!r} {problem}, so it is not usable in a test id or file name",
                f"a {what} key must be {KEY_RULE}, e.g. photo_woman or nvfp4_fp8e",
            )
        return text

    def no_unknown(self, table: Mapping[str, Any], known: Iterable[str], key: str) -> None:
        known = sorted(known)
        for name in table:
            if name not in known:
                raise self.error(
                    f"{key}.{name}" if key else name,
                    f"unknown key {name!r}",
                    f"known keys here: {', '.join(known)} (check the spelling)",
                )

    def input_ref(self, value: object, key: str, workflow: Workflow) -> InputRef:
        table = self.table(value, key)
        self.no_unknown(table, {"node", "input"}, key)
        node = self.require(table, "node", key, "write { node = '27', input = 'text' }")
        name = self.require(table, "input", key, "write { node = '27', input = 'text' }")
        if isinstance(node, int) and not isinstance(node, bool):
            node = str(node)
        ref = InputRef(self.string(node, f"{key}.node"), self.string(name, f"{key}.input"))
        workflow.check_input(ref, key=key, suite_path=self.where)
        return ref


def key_problem(text: str) -> str | None:
    """Why ``text`` cannot be a prompt or config key, or None if it can."""
    if ".." in text:
        return "contains '..'"
    for char in text:
        if char in KEY_FORBIDDEN:
            return f"contains {char!r}"
        if char.isspace():
            return f"contains the space {char!r}"
        if char in BIDI_CONTROLS:
            return f"contains the bidi-override character {char!r}"
        if unicodedata.category(char) == "Cc":
            return f"contains the control character {char!r}"
    return None


def kind(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return f"string {value!r}"
    return f"{type(value).__name__} {value!r}"
