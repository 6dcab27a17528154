"""The client's value objects, pure: what a server is, what it made, what reached the caller.

The stages of one image read in order: the scheduler's ``ImageRequest`` becomes a prompt the
client follows (``_PromptTracker``, private), the server finishes it (:class:`FinishedPrompt`),
and the client fetches and verifies its image (:class:`GeneratedImage`), which scoring gets.

Imports neither httpx nor pytest, so the pipeline can name these types without loading the
network stack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "DeviceInfo",
    "FinishedPrompt",
    "GeneratedImage",
    "ImageRef",
    "Progress",
    "ServerInfo",
]


@dataclass(frozen=True)
class DeviceInfo:
    """One compute device from ``/system_stats`` (``index`` is None on CPU; VRAM in bytes)."""

    name: str
    type: str
    index: int | None
    vram_total: int
    vram_free: int

    @property
    def readable_name(self) -> str:
        """The device's name without ComfyUI's decoration.

        ``"cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"`` becomes ``"NVIDIA H100 80GB HBM3"``.
        """
        name = self.name.split(" : ", 1)[0].strip()
        match = re.match(r"^[a-z]+:\d+\s+(.+)$", name)
        return match.group(1) if match else name


@dataclass(frozen=True)
class ServerInfo:
    """What ``/system_stats`` says about the host (shown in the pytest report header)."""

    url: str
    comfyui_version: str
    python_version: str
    pytorch_version: str
    os: str
    devices: tuple[DeviceInfo, ...]
    argv: tuple[str, ...] = ()

    @property
    def gpu_name(self) -> str:
        """The first device's readable name, or ``"cpu"`` when the server has no device."""
        return self.devices[0].readable_name if self.devices else "cpu"

    @property
    def embeds_metadata(self) -> bool:
        """False when the server runs with ``--disable-metadata`` (no prompt in its PNGs)."""
        return "--disable-metadata" not in self.argv


@dataclass(frozen=True)
class ImageRef:
    """An output file exactly as the server names it: the ``/view`` triplet."""

    filename: str
    subfolder: str
    type: str

    def params(self) -> dict[str, str]:
        """The ``/view`` query parameters for this file."""
        return {"filename": self.filename, "subfolder": self.subfolder, "type": self.type}

    def __str__(self) -> str:
        return f"{self.filename} (subfolder {self.subfolder!r}, type {self.type!r})"


@dataclass(frozen=True)
class Progress:
    """Node ``node`` of prompt ``prompt_id`` is at step ``value`` of ``max``."""

    prompt_id: str
    node: str
    value: int
    max: int
    class_type: str = ""  #: the node's class when this client submitted the graph


@dataclass(frozen=True)
class FinishedPrompt:
    """A prompt the server finished successfully.

    ``outputs`` maps each output node to its images; ``cached_nodes`` are the nodes the
    server took from its cache; ``server_seconds`` spans execution_start to
    execution_success on the server's clock (None if unknown); ``fully_cached`` means no
    node ran at all. ``source`` says how completion was learnt: ``websocket`` or ``history``.
    """

    prompt_id: str
    outputs: Mapping[str, tuple[ImageRef, ...]]
    cached_nodes: tuple[str, ...]
    server_seconds: float | None
    fully_cached: bool
    source: str = "websocket"


@dataclass(frozen=True)
class GeneratedImage:
    """One verified image, as scoring gets it: the PNG bytes and where they came from.

    ``wall_seconds`` runs from submit to the image fetched (queue time included; None for a
    cache hit that did not record it); ``server_seconds`` is the server's own execution
    time. ``cached`` says where the bytes came from: ``""`` generated now, ``"server"``
    ComfyUI served the output node from its cache, ``"plugin"`` the plugin's image cache.
    ``image_ref`` is the ``/view`` triplet the bytes were fetched with (None from the cache).
    """

    png: bytes = field(repr=False)
    sha256: str
    prompt_id: str
    host: str
    wall_seconds: float | None
    server_seconds: float | None
    cached: str = ""
    image_ref: ImageRef | None = None
