"""Node specs for the classes the fake supports, exactly as ComfyUI 0.18.1 serves them.

The specs are the real ``/object_info/{class}`` replies (``data/object_info.json``), so the
``input_config`` quoted in validation errors is the real one. Loader file lists are live: they
are filled from the fake's model folders on every request, as a real server rescans its
``models/`` directories.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from ..workflow import MODEL_INPUTS

__all__ = [
    "BUILTIN_VAES",
    "LOADER_INPUTS",
    "NodeCatalog",
    "models_for_graphs",
]

#: (loader class, input) -> model folder it lists: the package's one table, which also covers
#: loaders the fake does not run, so ``models_for_graphs`` serves graphs meant for a real server.
LOADER_INPUTS: Mapping[tuple[str, str], str] = MODEL_INPUTS

#: VAELoader choices that are built into ComfyUI, not files.
BUILTIN_VAES = frozenset({"pixel_space", "taesd", "taesdxl", "taesd3", "taef1"})


@functools.cache
def _recorded_specs() -> dict[str, Any]:
    text = (
        resources.files("pytest_zimage_quality")
        .joinpath("data/object_info.json")
        .read_text(encoding="utf-8")
    )
    nodes: dict[str, Any] = json.loads(text)["nodes"]
    return nodes


class NodeCatalog:
    """The node classes one fake server knows, with their live loader file lists."""

    def __init__(self, models: Mapping[str, list[str]]) -> None:
        #: folder -> file names; the fake mutates the lists in place (add/remove files).
        self.models = models

    @staticmethod
    def class_names() -> list[str]:
        return list(_recorded_specs())

    @staticmethod
    def has(class_type: object) -> bool:
        return isinstance(class_type, str) and class_type in _recorded_specs()

    @staticmethod
    def is_output(class_type: str) -> bool:
        return bool(_recorded_specs()[class_type]["output_node"])

    @staticmethod
    def return_types(class_type: str) -> tuple[str, ...]:
        return tuple(_recorded_specs()[class_type]["output"])

    def _files(self, folder: str) -> list[str]:
        return sorted(self.models.get(folder, []))

    def spec(self, class_type: str) -> dict[str, Any]:
        """A fresh copy of the ``/object_info`` entry, loader lists filled in."""
        info: dict[str, Any] = copy.deepcopy(_recorded_specs()[class_type])
        inputs = info["input"]
        for section in ("required", "optional"):
            for name, value in inputs.get(section, {}).items():
                folder = LOADER_INPUTS.get((class_type, name))
                if folder is None:
                    continue
                files = self._files(folder)
                if class_type == "VAELoader":
                    files = [*files, "pixel_space"]
                value[0] = files
        return info

    def input_types(self, class_type: str) -> dict[str, Any]:
        """``INPUT_TYPES()`` of the class: the ``input`` part of its spec."""
        inputs: dict[str, Any] = self.spec(class_type)["input"]
        return inputs

    def object_info(self, classes: Iterable[str] | None = None) -> dict[str, Any]:
        names = self.class_names() if classes is None else list(classes)
        return {name: self.spec(name) for name in names}


def models_for_graphs(graphs: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The model folders a server needs to accept every graph: folder -> sorted file names.

    Reads the loader inputs (``UNETLoader.unet_name`` -> ``diffusion_models``,
    ``CLIPLoader.clip_name`` -> ``text_encoders``, ``VAELoader.vae_name`` -> ``vae``,
    ``CheckpointLoaderSimple.ckpt_name`` -> ``checkpoints``, ...). Linked inputs and
    built-in VAEs such as ``pixel_space`` are skipped.
    """
    found: dict[str, set[str]] = {}
    for graph in graphs:
        for node in graph.values():
            if not isinstance(node, Mapping):
                continue
            class_type = node.get("class_type")
            inputs = node.get("inputs")
            if not isinstance(class_type, str) or not isinstance(inputs, Mapping):
                continue
            for name, value in inputs.items():
                folder = LOADER_INPUTS.get((class_type, name))
                if folder is None or not isinstance(value, str):
                    continue
                if folder == "vae" and value in BUILTIN_VAES:
                    continue
                found.setdefault(folder, set()).add(value)
    return {folder: sorted(files) for folder, files in sorted(found.items())}
