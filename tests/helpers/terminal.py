"""A stand-in for pytest's TerminalReporter, for rendering the summary in tests."""

from __future__ import annotations

__all__ = ["Terminal"]


class Terminal:
    """Just enough of pytest's TerminalReporter: the lines, and the markup asked for."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write_sep(self, sep: str, title: str, **markup: bool) -> None:
        self.lines.append(f"{sep * 3} {title} {sep * 3}")

    def write_line(self, line: str, **markup: bool) -> None:
        colour = next((name for name in ("red", "green", "yellow") if markup.get(name)), "")
        self.lines.append(f"{line}{'  <' + colour + '>' if colour else ''}")
