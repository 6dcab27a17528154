"""SIGTERM and SIGHUP stop a run the way Ctrl-C does.

``docker stop`` and a cancelled CI job send SIGTERM (a closed terminal SIGHUP), whose default
action kills pytest at once: this run's queued prompts would go on running on the server for
nobody and no summary.json or report would be written. Turned into ``KeyboardInterrupt`` on the
main thread, they take pytest's Ctrl-C path instead: our prompts are cancelled, the finished
cases are written, and the run is marked incomplete with a non-zero exit status.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["STOP_SIGNALS", "stop_on_signals"]

#: The signals that get the Ctrl-C stop (SIGHUP does not exist on Windows).
STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def stop_on_signals() -> Callable[[], None]:
    """Install the handlers; returns the function that puts the previous ones back.

    Only signals still at their default action are taken: a handler someone else installed,
    or an ignored SIGHUP (``nohup``), is left as it is. Outside the main thread (where Python
    cannot install handlers) nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[signal.Signals, Any] = {}
    for signum in STOP_SIGNALS:
        if signal.getsignal(signum) is signal.SIG_DFL:
            previous[signum] = signal.signal(signum, _interrupt)

    def restore() -> None:
        for signum, handler in previous.items():
            if signal.getsignal(signum) is _interrupt:
                signal.signal(signum, handler)
        previous.clear()

    return restore
