"""Where a run writes: its report directory (results.jsonl grows one line per case as the
reports arrive, so completed results are never lost) and the image cache, both under pytest's
cache directory unless an option names them. Nothing is created until a run needs it, so an
unrelated pytest run leaves no trace."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ..artifacts import ReportDir, ResultsLog
from ..records import CaseRecord

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = ["RunDirs"]


class RunDirs:
    """The report directory, the image cache and results.jsonl of one run."""

    def __init__(
        self, config: pytest.Config, settings: Settings, run_id: str, *, is_worker: bool
    ) -> None:
        self.config = config
        self.settings = settings
        self.run_id = run_id
        self.is_worker = is_worker
        self._report_dir: ReportDir | None = None
        self._cache_dir: Path | None = None
        self._prepared = False
        self._results: ResultsLog | None = None

    @property
    def report_root(self) -> Path:
        """``--zimage-report-dir``, else ``zimage/report`` in pytest's cache directory."""
        return self._default_dir(self.settings.report_dir, "report")

    @property
    def report_dir(self) -> ReportDir:
        """The run's report directory (only runs that need it create pytest's cache dir)."""
        if self._report_dir is None:
            self._report_dir = ReportDir(self.report_root, self.run_id)
        return self._report_dir

    @property
    def cache_dir(self) -> Path:
        if self._cache_dir is None:
            self._cache_dir = self._default_dir(self.settings.cache_dir, "images")
        return self._cache_dir

    def _default_dir(self, chosen: Path | None, leaf: str) -> Path:
        if chosen is not None:
            return chosen
        cache = getattr(self.config, "cache", None)
        if cache is not None:
            return Path(cache.mkdir("zimage")) / leaf
        return self.config.rootpath / ".pytest_cache" / "d" / "zimage" / leaf

    def prepare(self) -> None:
        """Create the report directory and open results.jsonl (the controller only: xdist
        workers send their records in test reports)."""
        if self._prepared:
            return
        self._prepared = True
        if not self.is_worker:
            self.report_dir.prepare()
            self._results = ResultsLog(self.report_dir.results_path, self.run_id)

    def append(self, record: CaseRecord, *, nodeid: str) -> None:
        """One line of results.jsonl, written as the case's report arrives."""
        if self._results is None:
            self.prepare()
        assert self._results is not None
        self._results.append(record, nodeid=nodeid)

    def close(self) -> None:
        if self._results is not None:
            self._results.close()
