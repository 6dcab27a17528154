"""The fake's input/output/temp directories and ComfyUI's rules for naming and finding files.

Outputs are real files in a private temporary directory (see ``tempdirs``), so ``/view`` can answer with aiohttp's
``FileResponse`` (ETag, Last-Modified, ranges) exactly as ComfyUI does. Naming follows
``folder_paths.get_save_image_path`` (``<prefix>_<00001>_.png``, counter per prefix, a ``/`` in
the prefix makes a subfolder); lookup follows the ``/view`` handler's checks in order, because
clients see their status codes (400 / 403 / 404).

``os.path`` is used on purpose: ComfyUI's checks rely on ``abspath``/``commonpath`` string
semantics (no symlink resolution), which ``Path.resolve()`` would change.
"""

# ruff: noqa: PTH100, PTH103, PTH110, PTH118, PTH119, PTH120, PTH122, PTH208

from __future__ import annotations

import os
import re
import shutil
import threading
import weakref
from pathlib import Path
from typing import Literal

from .tempdirs import make_owned_dir

__all__ = ["FileStore", "ViewLookup"]

Kind = Literal["output", "temp", "input"]


class ViewLookup:
    """Result of resolving a /view query: a file, or the status the real server answers."""

    def __init__(self, status: int, path: Path | None = None, filename: str = "") -> None:
        self.status = status
        self.path = path
        self.filename = filename


class FileStore:
    """``output/``, ``temp/`` and ``input/`` under one directory owned by the fake."""

    def __init__(self, root: Path | None = None) -> None:
        self._finalizer: weakref.finalize[..., FileStore] | None = None
        if root is None:
            # marked with our pid: a later fake removes it if this process is SIGKILLed;
            # the finalizer covers a fake never stopped in a process that exits normally
            root = make_owned_dir()
            self._finalizer = weakref.finalize(self, shutil.rmtree, root, ignore_errors=True)
        self.root = root
        self._lock = threading.Lock()
        for kind in ("output", "temp", "input"):
            (root / kind).mkdir(parents=True, exist_ok=True)

    def directory(self, kind: str) -> Path | None:
        if kind not in ("output", "temp", "input"):
            return None
        return self.root / kind

    def cleanup(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None

    # -- saving (SaveImage / PreviewImage) ------------------------------------------------------

    def save(self, kind: Kind, filename_prefix: str, images: list[bytes]) -> list[dict[str, str]]:
        """Write PNG bytes like SaveImage and return ``{"filename", "subfolder", "type"}``.

        Raises ``ValueError`` (the real node raises ``Exception``) for a prefix escaping the
        directory."""
        base = self.root / kind
        normalized = os.path.normpath(filename_prefix)
        subfolder = os.path.dirname(normalized)
        filename = os.path.basename(normalized)
        folder = Path(os.path.abspath(base / subfolder))
        if os.path.commonpath((str(base), str(folder))) != str(base):
            raise ValueError(
                "**** ERROR: Saving image outside the output folder is not allowed."
                f"\n full_output_folder: {folder}\n         output_dir: {base}"
            )
        results = []
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            counter = self._next_counter(folder, filename)
            for data in images:
                name = f"{filename}_{counter:05}_.png"
                (folder / name).write_bytes(data)
                results.append({"filename": name, "subfolder": subfolder, "type": kind})
                counter += 1
        return results

    @staticmethod
    def _next_counter(folder: Path, filename: str) -> int:
        pattern = re.compile(re.escape(filename) + r"_(\d+)_")
        best = 0
        for entry in os.listdir(folder):
            match = pattern.match(entry)
            if match:
                best = max(best, int(match.group(1)))
        return best + 1

    # -- /view ------------------------------------------------------------------------------

    def lookup(self, filename: str | None, kind: str | None, subfolder: str | None) -> ViewLookup:
        """Resolve ``/view`` query values, with the real handler's checks in its order."""
        if filename is None:
            return ViewLookup(404)
        base: Path | None = None
        for suffix, annotated in (("[output]", "output"), ("[input]", "input"), ("[temp]", "temp")):
            if filename.endswith(suffix):
                base = self.root / annotated
                filename = filename[: -(len(suffix) + 1)]
                break
        if not filename:
            return ViewLookup(400)
        if filename[0] == "/" or ".." in filename:
            return ViewLookup(400)
        if base is None:
            base = self.directory(kind if kind is not None else "output")
        if base is None:
            return ViewLookup(400)
        if subfolder is not None:
            full = os.path.abspath(os.path.join(base, subfolder))
            if os.path.commonpath((full, str(base))) != str(base):
                return ViewLookup(403)
            base = Path(full)
        name = os.path.basename(filename)
        path = base / name
        if not path.is_file():
            return ViewLookup(404)
        return ViewLookup(200, path, name)

    # -- upload ---------------------------------------------------------------------------------

    def upload(
        self, kind: str | None, subfolder: str, filename: str, data: bytes, overwrite: bool
    ) -> tuple[int, dict[str, str] | None]:
        """POST /upload/image: dedupe identical bytes, rename different ones ``name (1).png``."""
        kind = kind or "input"
        base = self.directory(kind)
        if base is None:
            kind, base = "input", self.root / "input"
        folder = os.path.join(base, os.path.normpath(subfolder))
        path = os.path.abspath(os.path.join(folder, filename))
        if os.path.commonpath((str(base), path)) != str(base):
            return 400, None
        with self._lock:
            os.makedirs(folder, exist_ok=True)
            stem, ext = os.path.splitext(filename)
            duplicate = False
            if not overwrite:
                i = 1
                while os.path.exists(path):
                    if Path(path).read_bytes() == data:
                        duplicate = True
                        break
                    filename = f"{stem} ({i}){ext}"
                    path = os.path.join(folder, filename)
                    i += 1
            if not duplicate:
                Path(path).write_bytes(data)
        return 200, {"name": filename, "subfolder": subfolder, "type": kind}
