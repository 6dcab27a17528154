"""Under pytest-xdist, every zimage case runs on one worker, so one pool schedules generation.

Each worker that ran zimage cases would run its own pool over the same servers: more model
loads, a scorer per worker, and a stage hold that sees only a share of the cases. With ``-n``'s
default ``load`` distribution the plugin supplies the scheduler instead: xdist's load-scope
scheduling with every zimage case in one scope, so the one worker that receives them is the
only one that generates, with the whole plan queued ahead as without ``-n``, while every other
test still spreads over all workers. Other distributions the user chose are left alone.
"""

from __future__ import annotations

from collections.abc import Collection
from fnmatch import fnmatch
from typing import Any

import pytest

from .collect import SUITE_FILE_PATTERN

__all__ = ["GROUP", "WORKERINPUT_KEY", "is_zimage_node", "make_scheduler", "owns_every_case"]

#: the one scope of every zimage case
GROUP = "zimage"
#: set in each worker's input when the cases run on one worker
WORKERINPUT_KEY = "zimage_one_worker"


def groups_cases(config: pytest.Config) -> bool:
    """On the controller: whether the plugin schedules (``-n`` with its default distribution)."""
    return getattr(config, "workerinput", None) is None and config.getvalue("dist") == "load"


def is_zimage_node(nodeid: str, case_ids: Collection[str]) -> bool:
    """A suite file's case, or a Python test parametrized over one of ``case_ids``."""
    path = nodeid.split("::", 1)[0]
    if fnmatch(path.rsplit("/", 1)[-1], SUITE_FILE_PATTERN):
        return True
    return nodeid.endswith("]") and nodeid.rsplit("[", 1)[-1][:-1] in case_ids


def make_scheduler(config: pytest.Config, log: Any, case_ids: Collection[str]) -> Any:
    """xdist's load-scope scheduling, every zimage case in one scope, every other test alone."""
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 - only under xdist

    class ZImageScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return GROUP if is_zimage_node(nodeid, case_ids) else nodeid

    return ZImageScheduling(config, log)


def owns_every_case(config: pytest.Config) -> bool:
    """On an xdist worker: True when whichever worker runs a zimage case runs all of them."""
    workerinput = getattr(config, "workerinput", None)
    return bool(workerinput and workerinput.get(WORKERINPUT_KEY))
