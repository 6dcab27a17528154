"""Checks before anything is generated: is the host ComfyUI, and can it run these graphs?

:func:`server_info` reads ``/system_stats`` (refusing a host that is not ComfyUI);
:func:`check_graphs` compares every graph with the server's ``/object_info`` (unknown node
classes, model files missing from a models folder, values not among a combo's options);
:func:`rejection` turns a ``POST /prompt`` validation reply (400) into one readable error,
naming the models folder when the cause is a missing file.

Pure: the client fetches the replies and passes them in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ComfyUIProtocolError, ModelFilesMissingError, WorkflowRejectedError
from ..workflow import MODEL_INPUTS
from ._types import DeviceInfo, ServerInfo

__all__ = ["LOADER_FOLDERS", "check_graphs", "rejection", "server_info"]

#: Loader class -> {input name: models folder the server reads that input's file from}.
LOADER_FOLDERS: Mapping[str, Mapping[str, str]] = {
    cls: {name: folder for (c, name), folder in MODEL_INPUTS.items() if c == cls}
    for cls in dict.fromkeys(c for c, _ in MODEL_INPUTS)
}
_MODEL_FILE_SUFFIXES = (".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".gguf")


def _is_link(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _combo_options(spec: object) -> list[Any] | None:
    """The options of a combo input spec, in either encoding; None if not a combo."""
    if not isinstance(spec, list) or not spec:
        return None
    head = spec[0]
    if isinstance(head, list):  # old encoding: [[opt, ...], {...}]
        return head
    if head == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
        options = spec[1].get("options")
        if isinstance(options, list) and not spec[1].get("multiselect"):
            return options
    return None


def _config(label: str) -> str:
    """``config 'nvfp4'`` for a bare label; a label that says what it is stays as it is."""
    return label if label.lower().startswith(("config", "suite")) else f"config {label!r}"


def _list_some(values: Sequence[object], limit: int = 8) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values)} in all)"
    return f"[{shown}]"


def server_info(stats: Mapping[str, Any], *, host: str, what: str) -> ServerInfo:
    """A ``/system_stats`` reply as :class:`ServerInfo`; refuses a host that is not ComfyUI."""
    system = stats.get("system")
    if not isinstance(system, dict) or "comfyui_version" not in system:
        raise ComfyUIProtocolError(
            f"{what}: {host} answered JSON without system.comfyui_version; "
            "it does not look like ComfyUI",
            host=host,
        )
    devices = []
    for dev in stats.get("devices") or ():
        if isinstance(dev, dict):
            index = dev.get("index")
            devices.append(
                DeviceInfo(
                    name=str(dev.get("name", "?")),
                    type=str(dev.get("type", "?")),
                    index=index if isinstance(index, int) else None,
                    vram_total=int(dev.get("vram_total") or 0),
                    vram_free=int(dev.get("vram_free") or 0),
                )
            )
    argv = system.get("argv")
    return ServerInfo(
        url=host,
        comfyui_version=str(system.get("comfyui_version")),
        python_version=str(system.get("python_version", "")),
        pytorch_version=str(system.get("pytorch_version", "")),
        os=str(system.get("os", "")),
        devices=tuple(devices),
        argv=tuple(str(a) for a in argv) if isinstance(argv, list) else (),
    )


def check_graphs(
    graphs: Mapping[str, Mapping[str, Any]],
    spec_of: Callable[[str], dict[str, Any] | None],
    *,
    host: str,
) -> None:
    """Refuse graphs the server cannot run (see :meth:`ComfyUIClient.check_graphs`).

    ``spec_of`` answers a node class's ``/object_info`` spec (None: unknown); it is asked
    once per class.
    """
    specs: dict[str, dict[str, Any] | None] = {}
    for graph in graphs.values():
        for node in graph.values():
            cls = node.get("class_type") if isinstance(node, Mapping) else None
            if isinstance(cls, str) and cls not in specs:
                specs[cls] = spec_of(cls)
    unknown: list[str] = []
    invalid: list[str] = []
    missing: list[dict[str, str]] = []
    for label, graph in graphs.items():
        for node_id, node in graph.items():
            cls = node.get("class_type") if isinstance(node, Mapping) else None
            if not isinstance(cls, str):
                unknown.append(f"{_config(label)}: node {node_id} has no class_type")
                continue
            spec = specs.get(cls)
            if spec is None:
                unknown.append(f"{_config(label)}: node {node_id} uses class {cls!r}")
                continue
            declared: dict[str, Any] = {}
            for group in ("required", "optional"):
                entries = (spec.get("input") or {}).get(group)
                if isinstance(entries, dict):
                    declared.update(entries)
            for name, value in (node.get("inputs") or {}).items():
                options = _combo_options(declared.get(name))
                if options is None or _is_link(value) or isinstance(value, dict):
                    continue
                if value in options:
                    continue
                folder = LOADER_FOLDERS.get(cls, {}).get(name)
                if (
                    folder is None
                    and isinstance(value, str)
                    and (value.lower().endswith(_MODEL_FILE_SUFFIXES))
                ):
                    folder = "?"
                if folder is not None:
                    missing.append(
                        {
                            "config": str(label),
                            "node": str(node_id),
                            "class_type": cls,
                            "input": str(name),
                            "file": str(value),
                            "folder": folder,
                            "available": ", ".join(map(str, options[:5]))
                            + (", ..." if len(options) > 5 else ""),
                        }
                    )
                else:
                    invalid.append(
                        f"{_config(label)}: node {node_id} ({cls}) input {name} = "
                        f"{value!r} is not one of the server's options {_list_some(options)}"
                    )
    if unknown:
        raise WorkflowRejectedError(
            f"the ComfyUI server at {host} does not know these node classes:\n  "
            + "\n  ".join(unknown),
            host=host,
            error_type="missing_node_type",
            hint="install the custom nodes that provide them on the server, "
            "or fix class_type in the workflow",
        )
    if missing:
        lines = []
        for m in missing:
            where = (
                f"models/{m['folder']}/"
                if m["folder"] != "?"
                else "the models folder this node loads from"
            )
            have = f" (server has: {m['available']})" if m["available"] else " (folder empty)"
            lines.append(
                f"{_config(m['config'])}: node {m['node']} ({m['class_type']}) "
                f"{m['input']} = {m['file']!r}: copy it into {where}{have}"
            )
        also = ("\n  also: " + "\n  also: ".join(invalid)) if invalid else ""
        raise ModelFilesMissingError(
            f"{len(missing)} model file(s) named by the suite are not on the ComfyUI "
            f"server at {host}:\n  " + "\n  ".join(lines) + also,
            host=host,
            missing=missing,
            hint="copy each file into the named folder under the server's models/ "
            "directory (no restart needed), or fix the file name in the suite's config",
        )
    if invalid:
        raise WorkflowRejectedError(
            f"the ComfyUI server at {host} would reject these inputs:\n  " + "\n  ".join(invalid),
            host=host,
            error_type="value_not_in_list",
            hint="fix the values in the workflow or the config overrides",
        )


def rejection(
    reply: Mapping[str, Any], graph: Mapping[str, Any], *, host: str
) -> WorkflowRejectedError:
    """A readable WorkflowRejectedError from a validation reply (400 body)."""
    error = reply.get("error")
    if not isinstance(error, Mapping):
        error = {"type": "", "message": str(error or "validation failed")}
    etype = str(error.get("type") or "")
    message = str(error.get("message") or "validation failed")
    details = str(error.get("details") or "")
    head = message + (f" ({details})" if details and details not in message else "")
    lines = [f"ComfyUI at {host} rejected the workflow: {head} [{etype}]"]
    hint = "fix the workflow template or the config overrides for the node(s) named above"
    extra = error.get("extra_info")
    if etype in ("missing_node_type", "invalid_prompt"):
        node_id = extra.get("node_id") if isinstance(extra, Mapping) else None
        if node_id is None:
            found = re.search(r"#([^'\s]+)'", details)
            node_id = found.group(1) if found else None
        if node_id is not None:
            node = graph.get(str(node_id))
            cls = node.get("class_type") if isinstance(node, Mapping) else None
            lines.append(f"  node {node_id} (class {cls!r})")
        hint = (
            "install the custom node that provides the class on the server, "
            "or fix class_type in the workflow"
        )
    elif etype == "prompt_no_outputs":
        hint = "the graph needs an output node such as SaveImage"
    node_errors = reply.get("node_errors")
    files: list[str] = []
    if isinstance(node_errors, Mapping):
        for node_id, entry in node_errors.items():
            if not isinstance(entry, Mapping):
                continue
            cls = str(entry.get("class_type") or "?")
            for err in entry.get("errors") or ():
                if not isinstance(err, Mapping):
                    continue
                info = err.get("extra_info")
                name = info.get("input_name") if isinstance(info, Mapping) else None
                where = f"node {node_id} ({cls})" + (f" input {name}" if name else "")
                text = str(err.get("message") or err.get("type") or "error")
                det = str(err.get("details") or "")
                if det and det != name:
                    text += f": {det}"
                lines.append(f"  {where}: {text}")
                folder = LOADER_FOLDERS.get(cls, {}).get(str(name))
                if err.get("type") == "value_not_in_list" and folder:
                    files.append(f"models/{folder}")
    if files:
        hint = (
            f"a model file is missing on the server: copy it into "
            f"{', '.join(dict.fromkeys(files))}, or fix the file name in the config"
        )
    return WorkflowRejectedError(
        "\n".join(lines),
        host=host,
        error_type=etype,
        node_errors=dict(node_errors) if isinstance(node_errors, Mapping) else {},
        hint=hint,
    )
