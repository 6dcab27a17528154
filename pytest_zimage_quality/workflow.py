"""The ComfyUI API-format workflow template: load it, patch it for one case, hash it.

A case's graph is the template with the config's input overrides, the prompt text, the seed
and a per-case ``filename_prefix`` applied. The graph hash ignores the prefix (it names the
output file but does not change the pixels), so it identifies the image a graph produces and
serves as the cache key's core.

Imports neither pytest nor torch.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SuiteError

__all__ = [
    "MAX_NESTING",
    "MODEL_INPUTS",
    "OUTPUT_NODE_CLASSES",
    "InputRef",
    "Workflow",
    "canonical_json",
    "graph_hash",
    "model_files",
]

#: Node classes that write an image the client can fetch through ``/view``.
OUTPUT_NODE_CLASSES = frozenset({"SaveImage", "PreviewImage"})

Graph = dict[str, dict[str, Any]]

#: How deeply an input value may nest lists and objects. An exported graph's inputs are
#: scalars and [node, output] links; deeper values are hostile, and would meet Python's
#: recursion limit later, in hashing or sending the graph.
MAX_NESTING = 16
_NESTING_HINT = "export the workflow from ComfyUI with 'Export (API)': its inputs are scalars and [node, output] links"

#: Loader inputs that name a model file, and the server's models/ folder each is read from.
#: The one table the client (missing-file hints), the fake (its model folders) and the cache
#: key (model identities) all use.
MODEL_INPUTS: dict[tuple[str, str], str] = {
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    **{("TripleCLIPLoader", f"clip_name{i}"): "text_encoders" for i in (1, 2, 3)},
    **{("QuadrupleCLIPLoader", f"clip_name{i}"): "text_encoders" for i in (1, 2, 3, 4)},
    ("VAELoader", "vae_name"): "vae",
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "config_name"): "configs",
    ("ImageOnlyCheckpointLoader", "ckpt_name"): "checkpoints",
    ("unCLIPCheckpointLoader", "ckpt_name"): "checkpoints",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("DiffControlNetLoader", "control_net_name"): "controlnet",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("StyleModelLoader", "style_model_name"): "style_models",
    ("GLIGENLoader", "gligen_name"): "gligen",
    ("HypernetworkLoader", "hypernetwork_name"): "hypernetworks",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("PhotoMakerLoader", "photomaker_model_name"): "photomaker",
    ("ModelPatchLoader", "name"): "model_patches",
    ("AudioEncoderLoader", "audio_encoder_name"): "audio_encoders",
}


def model_files(graph: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(models folder, file name) of every model file the graph's loaders name, sorted."""
    found = set()
    for node in graph.values():
        for name, value in node.get("inputs", {}).items():
            folder = MODEL_INPUTS.get((node.get("class_type"), name))
            if folder and isinstance(value, str):
                found.add((folder, value))
    return sorted(found)


@dataclass(frozen=True, order=True)
class InputRef:
    """One input of one node of the graph: ``node`` id and ``input`` name."""

    node: str
    input: str

    def __str__(self) -> str:
        return f"{self.node}.{self.input}"


def canonical_json(value: object) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def graph_hash(graph: Mapping[str, Any], *, ignore: Iterable[InputRef] = ()) -> str:
    """sha256 of the canonical graph, without ``_meta`` and the ``ignore``d inputs."""
    stripped: dict[str, Any] = {}
    ignored = {(ref.node, ref.input) for ref in ignore}
    for node_id, node in graph.items():
        inputs = {
            name: value
            for name, value in node.get("inputs", {}).items()
            if (node_id, name) not in ignored
        }
        stripped[node_id] = {"class_type": node.get("class_type"), "inputs": inputs}
    return hashlib.sha256(canonical_json(stripped).encode("utf-8")).hexdigest()


class Workflow:
    """An API-format graph template read from a JSON file."""

    def __init__(self, graph: Graph, *, path: str = "<memory>") -> None:
        self.path = path
        self._graph = graph
        self._check_shape()

    @classmethod
    def load(cls, path: Path) -> Workflow:
        """Read ``path``; a missing, unreadable or non-API-format file is a SuiteError."""
        try:
            text = path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise SuiteError(
                f"cannot read the workflow file: {exc.strerror or exc}",
                path=str(path),
                hint="the workflow path is relative to the suite file; fix [suite] workflow",
            ) from exc
        except UnicodeDecodeError as exc:
            raise SuiteError(
                f"the workflow file is not UTF-8 text (byte {exc.start})",
                path=str(path),
                hint="export the workflow from ComfyUI with 'Export (API)' (it writes UTF-8)",
            ) from exc
        try:
            graph = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SuiteError(
                f"the workflow is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                path=str(path),
                hint="export the workflow from ComfyUI with 'Export (API)'",
            ) from exc
        except RecursionError:
            raise SuiteError(
                "the workflow's JSON is nested too deeply to read",
                path=str(path),
                hint=_NESTING_HINT,
            ) from None
        if isinstance(graph, dict) and "nodes" in graph and "links" in graph:
            raise SuiteError(
                "this is a UI-format workflow (it has 'nodes' and 'links'), not API format",
                path=str(path),
                hint="in ComfyUI use 'Workflow > Export (API)' and point the suite at that file",
            )
        return cls(graph, path=str(path))

    def _check_shape(self) -> None:
        if not isinstance(self._graph, dict) or not self._graph:
            raise SuiteError(
                "the workflow must be a non-empty JSON object of nodes",
                path=self.path,
                hint="export the workflow from ComfyUI with 'Export (API)'",
            )
        for node_id, node in self._graph.items():
            if (
                not isinstance(node, dict)
                or not isinstance(node.get("class_type"), str)
                or not isinstance(node.get("inputs", {}), dict)
            ):
                raise SuiteError(
                    f"node {node_id!r} is not an API-format node "
                    "({'class_type': str, 'inputs': {...}})",
                    path=self.path,
                    hint="export the workflow from ComfyUI with 'Export (API)'",
                )
            for name, value in node.get("inputs", {}).items():
                if _nesting(value) > MAX_NESTING:
                    raise SuiteError(
                        f"input {name!r} of node {node_id!r} is nested more than "
                        f"{MAX_NESTING} levels deep",
                        path=self.path,
                        hint=_NESTING_HINT,
                    )

    @property
    def graph(self) -> Graph:
        """A deep copy of the template graph."""
        return copy.deepcopy(self._graph)

    def class_of(self, node_id: str) -> str:
        return str(self._graph[node_id]["class_type"])

    def value(self, ref: InputRef) -> Any:
        return self._graph[ref.node]["inputs"][ref.input]

    def output_nodes(self) -> list[str]:
        """Ids of the nodes that save or preview an image, in the file's order."""
        return [
            nid for nid, node in self._graph.items() if node["class_type"] in OUTPUT_NODE_CLASSES
        ]

    def check_input(self, ref: InputRef, *, key: str, suite_path: str) -> None:
        """Raise a SuiteError naming ``key`` of the suite file if ``ref`` is not in the graph."""
        if ref.node not in self._graph:
            raise SuiteError(
                f"node id {ref.node!r} is not in the workflow {Path(self.path).name} "
                f"(its nodes: {', '.join(sorted(self._graph, key=_id_order))})",
                path=suite_path,
                key=key,
                hint="use the node ids of the API-format workflow (the JSON object's keys)",
            )
        inputs = self._graph[ref.node].get("inputs", {})
        if ref.input not in inputs:
            raise SuiteError(
                f"node {ref.node} ({self.class_of(ref.node)}) has no input {ref.input!r} "
                f"(its inputs: {', '.join(sorted(inputs))})",
                path=suite_path,
                key=key,
                hint="name an input the node has in the API-format workflow",
            )
        if _is_link(inputs[ref.input]):
            raise SuiteError(
                f"input {ref} ({self.class_of(ref.node)}) is a link to another node, "
                "not a value that can be set",
                path=suite_path,
                key=key,
                hint="override literal inputs only (file names, numbers, text)",
            )

    def render(
        self,
        *,
        text: tuple[InputRef, str],
        seed: tuple[InputRef, int],
        overrides: Mapping[InputRef, Any],
        prefix: tuple[InputRef, str] | None = None,
    ) -> Graph:
        """The template with overrides, then prompt text and seed, then the prefix, applied."""
        graph = self.graph
        for ref, value in overrides.items():
            graph[ref.node]["inputs"][ref.input] = value
        for ref, value in (text, seed, *((prefix,) if prefix else ())):
            graph[ref.node]["inputs"][ref.input] = value
        return graph


def _nesting(value: object) -> int:
    """How deeply lists and objects nest in ``value`` (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list) and depth <= MAX_NESTING:
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
            deepest = max(deepest, depth + 1)
    return deepest


def _is_link(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _id_order(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 30, node_id)
