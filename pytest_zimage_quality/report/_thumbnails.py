"""Thumbnails for the HTML report: a JPEG of about 256 px per image content, made once.

Kept apart from the page so the engine can make them while the server works.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..records import CaseRecord

__all__ = ["THUMB_SIZE", "Thumbnail", "make_thumbnail", "thumbnails_for"]

#: Longest side of a thumbnail, in pixels.
THUMB_SIZE = 256


@dataclass(frozen=True)
class Thumbnail:
    path: Path
    width: int
    height: int


def make_thumbnail(source: Path, target: Path, size: int = THUMB_SIZE) -> Thumbnail | None:
    """A JPEG thumbnail of ``source`` at ``target`` (kept if already there); None if unreadable."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 - only when writing a report

    try:
        if target.exists():
            with Image.open(target) as existing:
                return Thumbnail(target, existing.width, existing.height)
        with Image.open(source) as image:
            image.thumbnail((size, size))
            rgb = image.convert("RGB")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        rgb.save(partial, "JPEG", quality=82, optimize=True)
        partial.replace(target)
        return Thumbnail(target, rgb.width, rgb.height)
    except (OSError, UnidentifiedImageError, ValueError):
        return None


def _sha16(record: CaseRecord, image: Path) -> str | None:
    sha = (record.image_sha256 or "").lower()
    if re.fullmatch(r"[0-9a-f]{16,}", sha):
        return sha[:16]
    try:
        return hashlib.sha256(image.read_bytes()).hexdigest()[:16]
    except OSError:
        return None


def thumbnails_for(records: Iterable[CaseRecord], thumbs_dir: Path) -> dict[str, Thumbnail | None]:
    """Thumbnails keyed by image path, made once per content, a few at a time."""
    jobs: dict[str, tuple[Path, Path]] = {}
    by_image: dict[str, str] = {}
    for record in records:
        if not record.image_path or record.image_path in by_image:
            continue
        image = Path(record.image_path)
        if not image.is_file():
            continue
        sha = _sha16(record, image)
        if sha is None:
            continue
        by_image[record.image_path] = sha
        jobs.setdefault(sha, (image, thumbs_dir / f"{sha}.jpg"))
    if not jobs:
        return {}
    workers = max(1, min(8, os.cpu_count() or 1, len(jobs)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        made = dict(
            zip(jobs, pool.map(lambda job: make_thumbnail(*job), jobs.values()), strict=True)
        )
    return {path: made[sha] for path, sha in by_image.items()}
