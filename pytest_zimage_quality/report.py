"""Terminal output: the report header and the summary tables. Formatting only.

Everything shown is read from the run summary (``summary.build_summary``), the same object
written to summary.json, so the terminal, the JSON and the HTML report cannot disagree.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import ZImageSession

__all__ = ["display_width", "format_table", "report_header", "write_terminal_summary"]


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK) characters take two."""
    return sum(
        2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1
        for ch in text
    )


def _pad(text: str, width: int, align: str) -> str:
    gap = max(0, width - display_width(text))
    return " " * gap + text if align == ">" else text + " " * gap


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], aligns: str) -> list[str]:
    """Lines of a table whose column widths fit the data (CJK-aware)."""
    widths = [display_width(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], display_width(cell))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(_pad(cell, widths[i], aligns[i]) for i, cell in enumerate(cells)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def report_header(session: ZImageSession) -> list[str]:
    settings = session.settings
    if not settings.hosts:
        return []  # unrelated runs stay quiet; zimage items say why they skip
    hosts = ", ".join(str(h) for h in settings.hosts)
    lines = [
        f"zimage: host {hosts}"
        + (" (SIMULATED: in-process fake ComfyUI)" if settings.simulated else "")
    ]
    weights = (
        "RANDOM WEIGHTS — NOT A QUALITY MEASUREMENT" if settings.random_weights else "pretrained"
    )
    lines.append(
        f"zimage: CLIP {settings.clip_model}/{settings.clip_pretrained}, LPIPS {settings.lpips_net}, "
        f"device {settings.device}, weights {weights}"
    )
    lines.append(f"zimage: report dir {session.report_dir.root}")
    if settings.header_names:
        lines.append(f"zimage: extra headers {', '.join(settings.header_names)} (values hidden)")
    return lines


def write_terminal_summary(tr: Any, session: ZImageSession) -> None:
    if session.is_worker:
        return
    if not session.settings.hosts:
        if session.any_zimage_items:
            tr.write_sep("=", "zimage quality gate", yellow=True)
            tr.write_line(
                "zimage: no quality gate ran: no ComfyUI host given (--zimage-host)", yellow=True
            )
        return
    if session.summary is None:
        if session.any_zimage_items:
            tr.write_sep("=", "zimage quality gate", yellow=True)
            tr.write_line("zimage: no case finished, so no gate was computed", yellow=True)
        return
    _write_summary(tr, session.summary, session)


def _write_summary(tr: Any, summary: dict[str, Any], session: ZImageSession) -> None:
    tr.write_sep("=", "zimage quality gate")
    for line in summary.get("banners", []):
        tr.write_line(line, red=True, bold=True)
    tr.write_line(f"zimage: report {session.report_dir.root}")
