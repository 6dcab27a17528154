"""The ComfyUI client: check a host, submit graphs, await completions, fetch and verify images.

Public names live here; the implementation is in private modules, one job each:

* ``_types``: value objects (:class:`ServerInfo`, :class:`ImageRef`, :class:`FinishedPrompt`,
  :class:`GeneratedImage`, ...), pure;
* ``_timeouts``: every deadline, retry count and backoff, in one place;
* ``_transport``: HTTP through httpx, retries, and the translation of transport errors;
* ``_ws``: the WebSocket listener thread and the progress relay;
* ``_events``: the protocol's events mapped to a prompt's state, written once for the
  WebSocket and for ``/history``;
* ``_preflight``: is it ComfyUI (``/system_stats``), can it run these graphs (models, nodes);
* ``_png``: full PNG decode and the embedded-graph check;
* ``_results``: the one path from a finished prompt to a verified :class:`GeneratedImage`;
* ``_core``, ``_submit``, ``_waiting``, ``_control``, ``_client``: the client, in parts.

Importing this package imports neither httpx nor websockets (the pipeline names its value
types without loading the network stack): :class:`ComfyUIClient` is imported on first use.
"""

from __future__ import annotations

from ._preflight import LOADER_FOLDERS
from ._types import DeviceInfo, FinishedPrompt, GeneratedImage, ImageRef, Progress, ServerInfo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._client import ComfyUIClient

__all__ = [
    "LOADER_FOLDERS",
    "ComfyUIClient",
    "DeviceInfo",
    "FinishedPrompt",
    "GeneratedImage",
    "ImageRef",
    "Progress",
    "ServerInfo",
]


def __getattr__(name: str) -> object:
    if name == "ComfyUIClient":
        from ._client import ComfyUIClient  # noqa: PLC0415 - httpx/websockets on first use

        return ComfyUIClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
