"""The pytest layer's run state: ``ZImageSession``, the registered plugin object of one run.

Import it from here; the private modules hold one job each (httpx's layout):

- ``_session``: ``ZImageSession`` itself, its hooks and the state they share;
- ``_suites``: suites, loaded once, and their cases (collection, ``zimage_case``);
- ``_plan``: the gate's plan made at collection, and the stage hold;
- ``_engine``, ``_scorers``: the engine and the scorers, started when first needed;
- ``_records``: one case's ``CaseRecord``, its check, and reading it back from a report;
- ``_dirs``: the report directory, results.jsonl and the image cache;
- ``_guard``: stopping on SIGTERM/SIGHUP, and the report directory's lock;
- ``_environment``: where the run happened (servers, scorers, VRAM peaks) for summary.json;
- ``_summary``, ``_ci_blocks``: the summary at session finish, with its CI blocks;
- ``_outputs``: what a finished run writes (summary.json, report.html, Markdown, JUnit
  properties), the report header and the terminal's CI lines;
- ``_exit``: the exit status, the verdict line printed last, the JUnit properties;
- ``_xdist``: what an xdist worker keeps (records for the stage hold) and sends (environment).
"""

from __future__ import annotations

from ._guard import REPORT_LOCK
from ._session import NO_HOST_REASON, SESSION_KEY, ZImageSession

__all__ = ["NO_HOST_REASON", "REPORT_LOCK", "SESSION_KEY", "ZImageSession"]
