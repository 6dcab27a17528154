"""One option's definition: its ``Settings`` field, parser, help, default, and how it is
given (flag, ini key, environment variable, suite file). ``OPTIONS`` is a table of these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ._parsers import Bounds, Choice

__all__ = ["Kind", "Option"]


#: How an option is given: ``value`` once; ``list`` repeatable (ini: one per line; env:
#: comma-separated); ``switch`` a flag without a value (ini: true/false); ``path`` a file or
#: directory (ini: relative to the ini file).
Kind = Literal["value", "list", "switch", "path"]


@dataclass(frozen=True)
class Option:
    """One option. ``name`` is its ``Settings`` field; the flag and ini key follow from it
    unless given. ``in_suite``: the suite file may set it too, so ``Settings`` holds None
    until an option does (the suite file, then ``default``, decide). ``ini_fallback``: a
    boolean pytest ini key whose value stands in when this one is unset."""

    name: str
    parse: Callable[[str], Any]
    help: str
    metavar: str = ""
    default: Any = None
    default_text: str | None = None
    kind: Kind = "value"
    flag: str | None = ""
    ini: str = ""
    env: str | None = None
    in_suite: bool = False
    ini_fallback: str | None = None

    def __post_init__(self) -> None:
        if self.flag == "":
            object.__setattr__(self, "flag", "--zimage-" + self.name.replace("_", "-"))
        if not self.ini:
            object.__setattr__(self, "ini", "zimage_" + self.name)
        if self.kind == "path" and self.default is not None:
            raise ValueError(f"{self.name}: a path option's default is described, not given")

    @property
    def dest(self) -> str:
        """The argparse destination (``config.getoption`` name)."""
        return (self.flag or self.ini).lstrip("-").replace("-", "_")

    @property
    def settings_default(self) -> Any:
        """The ``Settings`` field's default: None where the suite file may still decide."""
        return None if self.in_suite else self.default

    @property
    def bounds(self) -> Bounds[Any] | None:
        return self.parse if isinstance(self.parse, Bounds) else None

    @property
    def choices(self) -> tuple[str, ...]:
        return self.parse.choices if isinstance(self.parse, Choice) else ()

    @property
    def full_help(self) -> str:
        """The help text, ending in the default."""
        text = self.default_text
        if text is None and self.kind == "switch":
            text = "on" if self.default else "off"
        elif text is None:
            shown = f"{self.default:g}" if isinstance(self.default, float) else repr(self.default)
            text = f"suite file, else {shown}" if self.in_suite else shown
        return f"{self.help} Default: {text}."
