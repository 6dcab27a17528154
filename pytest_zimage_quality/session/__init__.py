"""The pytest layer's run state: ``ZImageSession``, the registered plugin object of one run.

The class lives in private modules, one job each (httpx's layout); import it from here.
"""

from __future__ import annotations

from ._guard import REPORT_LOCK
from ._session import NO_HOST_REASON, SESSION_KEY, ZImageSession

__all__ = ["NO_HOST_REASON", "REPORT_LOCK", "SESSION_KEY", "ZImageSession"]
