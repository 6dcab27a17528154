"""report.html's image grid: a section per prompt, a row per seed, a cell per config.

Links are relative to the report directory, so the directory can be moved or zipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..metrics import MetricInfo
from .metric_views import record_metric_facts
from .views import (
    DASH,
    Fact,
    GridRow,
    ImageCell,
    PromptRow,
    PromptSection,
    delta_class,
    fmt,
    redact,
    url_ref,
)

if TYPE_CHECKING:
    from ..artifacts import ReportDir
    from ..records import CaseRecord
    from ..thumbnails import Thumbnail
    from .charts import Column

__all__ = ["ImageLinks", "image_sections"]

_OUTCOME_BADGES = {
    "failed": ("FAILED", "failed"),
    "error": ("ERROR", "failed"),
    "xfailed": ("XFAIL", "expected"),
    "xpassed": ("XPASS", "expected"),
    "skipped": ("SKIPPED", "skipped"),
}


class ImageLinks:
    """Relative links from report.html to images and thumbnails."""

    def __init__(
        self,
        report_dir: ReportDir,
        thumbs: Mapping[str, Thumbnail | None],
        project_root: str | None = None,
    ) -> None:
        self.root = Path(report_dir.root).resolve()
        self.report_dir = report_dir
        self.thumbs = thumbs
        roots = {str(self.root), str(Path(report_dir.root).absolute())}
        if project_root and Path(project_root).is_absolute():
            roots.add(str(Path(project_root)))
        # longest first, so the report dir inside the project is cut before the project root
        self.prefixes = tuple(
            sorted(
                {r.rstrip("/") + "/" for r in roots if r not in ("", "/")}, key=len, reverse=True
            )
        )

    def relative(self, path: str | Path) -> str:
        """Relative to the report dir; outside it, a ``../`` path (never an absolute one)."""
        text = self.report_dir.relative(path)
        if Path(text).is_absolute():
            text = Path(os.path.relpath(Path(path).resolve(), self.root)).as_posix()
        return text

    def shorten(self, text: str) -> str:
        """``text`` with this machine's report-dir and project paths made relative."""
        for prefix in self.prefixes:
            text = text.replace(prefix, "")
        return text

    def image(self, record: CaseRecord) -> tuple[str, str, int, int]:
        """(full image href, thumbnail src, thumbnail width, height); "" where there is none."""
        if not record.image_path:
            return "", "", 0, 0
        href = url_ref(self.relative(record.image_path))
        thumb = self.thumbs.get(record.image_path)
        if thumb is None:
            return href, "", 0, 0
        return href, url_ref(self.relative(thumb.path)), thumb.width, thumb.height


def _image_cell(
    record: CaseRecord | None,
    column: Column,
    seed: str,
    links: ImageLinks,
    metrics: Mapping[str, MetricInfo],
    show_server: bool = False,
) -> ImageCell:
    if record is None:
        return ImageCell(
            present=False, config_label=column.label, seed=seed, thumb="", href="",
            thumb_width=0, thumb_height=0, alt="", clipscore=DASH, lpips=DASH, delta=DASH,
            delta_css="", is_reference=column.is_reference, outcome="not run", badge="",
            css="missing", expected_fail="", message="", cached="", title="not run",
        )  # fmt: skip
    href, thumb, width, height = links.image(record)
    badge, css = _OUTCOME_BADGES.get(record.outcome, ("", "ok"))
    if not badge and record.expected_fail:
        badge, css = "EXPECTED FAIL", "expected"
    message = links.shorten(redact(record.message))
    title_parts = [
        f"{record.prompt} · {column.label} · seed {seed}",
        f"outcome: {record.outcome or DASH}",
    ]
    if record.expected_fail:
        title_parts.append(f"expected to fail: {record.expected_fail}")
    if message:
        title_parts.append(message)
    readings = tuple(
        Fact(f"{metrics[name].label if name in metrics else name} read", text.replace("\n", " / "))
        for name, text in record.details.items()
    )
    title_parts.extend(f"{fact.label}: {fact.value}" for fact in readings)
    server = redact(record.host)
    if server:
        title_parts.append(
            f"made by {server}" + (f" ({record.cached} cache)" if record.cached else "")
        )
    return ImageCell(
        present=bool(href),
        config_label=column.label,
        seed=seed,
        thumb=thumb,
        href=href,
        thumb_width=width,
        thumb_height=height,
        alt=f"{record.prompt} / {column.label} / seed {seed}",
        clipscore=fmt(record.clipscore),
        lpips=DASH if column.is_reference else fmt(record.lpips),
        delta=DASH if column.is_reference else fmt(record.delta, signed=True),
        delta_css="" if column.is_reference else delta_class(record.delta, record.tolerance),
        is_reference=column.is_reference,
        outcome=record.outcome or "unknown",
        badge=badge,
        css=css,
        expected_fail=record.expected_fail,
        message=message,
        cached=record.cached,
        title="\n".join(title_parts),
        metrics=tuple(Fact(label, value) for label, value in record_metric_facts(record, metrics)),
        readings=readings,
        server=server if show_server else "",
    )


def image_sections(
    rows: Sequence[PromptRow],
    columns: tuple[Column, ...],
    records: Sequence[CaseRecord],
    links: ImageLinks,
    open_sections: bool,
    metrics: Mapping[str, MetricInfo] | None = None,
) -> tuple[PromptSection, ...]:
    sections = []
    show_server = len({r.host for r in records if r.host}) > 1  # a pool: say who made each
    for row in rows:
        prompt_records = [r for r in records if r.prompt == row.key]
        seeds = sorted({r.seed for r in prompt_records})
        lookup = {(r.config, r.seed): r for r in prompt_records}
        grid = tuple(
            GridRow(
                seed=str(seed),
                cells=tuple(
                    _image_cell(
                        lookup.get((c.key, seed)), c, str(seed), links, metrics or {}, show_server
                    )
                    for c in columns
                ),
            )
            for seed in seeds
        )
        n_failed = sum(1 for r in prompt_records if r.outcome in ("failed", "error"))
        sections.append(
            PromptSection(
                key=row.key,
                text=row.text,
                tags=row.tags,
                anchor=row.anchor,
                columns=columns,
                rows=grid,
                n_images=sum(1 for g in grid for c in g.cells if c.present),
                n_failed=n_failed,
                n_expected=sum(1 for r in prompt_records if r.outcome in ("xfailed", "xpassed")),
                open=open_sections or n_failed > 0,
            )
        )
    return tuple(sections)
