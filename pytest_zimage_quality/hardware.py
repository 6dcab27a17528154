"""Hardware classes: which servers of a pool may generate the two sides of one comparison.

A candidate is judged by its difference from the reference made with the same prompt and
seed. If the two images come from different GPUs, ComfyUI versions or torch/CUDA builds, that
difference mixes the config change with the hardware change. Servers are therefore grouped
into classes by what ``/system_stats`` reports (GPU name, ComfyUI version, torch and CUDA
versions, python) and by the identity of the model files they serve; a pair stays within one
class. Whether servers of one class really draw identical images is checked, not assumed:
the determinism check runs one reference case on every server of a class and compares the
image hashes.

Pure: plain mappings in, frozen values and summary dicts out. No pytest, no network.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "HardwareClass",
    "HardwareProfile",
    "class_lines",
    "classify",
    "determinism_plan",
    "determinism_report",
]


@dataclass(frozen=True)
class HardwareProfile:
    """What one server reports about itself, reduced to what changes its images."""

    url: str
    gpu: str
    comfyui_version: str
    pytorch_version: str
    cuda_version: str
    python_version: str
    #: (model file, its identity as canonical JSON), sorted; empty when not looked up
    models: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def from_system_stats(
        cls, url: str, stats: Mapping[str, Any], models: Mapping[str, object] | None = None
    ) -> HardwareProfile:
        """From a ``/system_stats`` body and ``{"folder/file": identity}`` of the model files
        the run uses (``ComfyUIClient.model_identity``: size, hash or metadata)."""
        system = stats.get("system") or {}
        devices = stats.get("devices") or []
        gpu = _readable_device(str(devices[0].get("name", ""))) if devices else "cpu"
        torch_version = str(system.get("pytorch_version") or "")
        return cls(
            url=url,
            gpu=gpu or "cpu",
            comfyui_version=str(system.get("comfyui_version") or "unknown"),
            pytorch_version=torch_version.split("+", 1)[0] or "unknown",
            cuda_version=_accelerator_build(torch_version),
            python_version=str(system.get("python_version") or "").split(" ", 1)[0] or "unknown",
            models=tuple(
                sorted(
                    (name, json.dumps(identity, sort_keys=True, default=str))
                    for name, identity in (models or {}).items()
                )
            ),
        )

    @property
    def key(self) -> tuple[object, ...]:
        """Everything that makes two servers draw different images; the url is not in it."""
        return (
            self.gpu,
            self.comfyui_version,
            self.pytorch_version,
            self.cuda_version,
            self.python_version,
            self.models,
        )

    @property
    def label(self) -> str:
        build = f"CUDA {self.cuda_version}" if self.cuda_version else "no accelerator build"
        return (
            f"{self.gpu} · ComfyUI {self.comfyui_version} · torch {self.pytorch_version} · "
            f"{build} · Python {self.python_version}"
        )


@dataclass(frozen=True)
class HardwareClass:
    """Servers that report the same hardware, software and model files."""

    id: str  # stable: a hash of the profile key, the same in every run on this hardware
    label: str
    servers: tuple[str, ...]
    profile: HardwareProfile = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "servers": list(self.servers),
            "gpu": self.profile.gpu,
            "comfyui_version": self.profile.comfyui_version,
            "pytorch_version": self.profile.pytorch_version,
            "cuda_version": self.profile.cuda_version,
            "python_version": self.profile.python_version,
            "model_files": [name for name, _ in self.profile.models],
        }


def classify(profiles: Iterable[HardwareProfile]) -> list[HardwareClass]:
    """Group servers into classes, in order of each class's first server."""
    groups: dict[tuple[object, ...], list[HardwareProfile]] = {}
    for profile in profiles:
        groups.setdefault(profile.key, []).append(profile)
    return [
        HardwareClass(
            id=_class_id(key),
            label=members[0].label,
            servers=tuple(p.url for p in members),
            profile=members[0],
        )
        for key, members in groups.items()
    ]


def class_lines(classes: Sequence[HardwareClass], *, with_id: bool = True) -> list[str]:
    """One line per hardware class: what it is and its servers (the terminal names them)."""
    lines = []
    for number, klass in enumerate(classes, 1):
        name = klass.id if with_id else f"{number} of {len(classes)}"
        word = "server" if len(klass.servers) == 1 else "servers"
        lines.append(
            f"hardware class {name}: {klass.label} — {len(klass.servers)} {word}: "
            + ", ".join(klass.servers)
        )
    return lines


def determinism_plan(classes: Sequence[HardwareClass]) -> dict[str, list[str]]:
    """Class id -> the servers that must each generate the same reference case: every class
    with more than one server (a lone server has nobody to disagree with)."""
    return {c.id: list(c.servers) for c in classes if len(c.servers) > 1}


def determinism_report(
    classes: Sequence[HardwareClass], case_id: str, hashes: Mapping[str, str | None]
) -> dict[str, Any]:
    """summary.json's ``determinism`` block from each server's image hash of ``case_id``
    (None: the server could not make it). A class whose servers disagree, or that could not
    be checked, must keep each (prompt, seed) on one server (``pin_pairs``)."""
    report: dict[str, Any] = {"case": case_id, "classes": []}
    for klass in classes:
        if len(klass.servers) < 2:
            continue
        seen = {url: hashes.get(url) for url in klass.servers}
        known = {h for h in seen.values() if h is not None}
        checked = all(h is not None for h in seen.values())
        identical = checked and len(known) == 1
        report["classes"].append(
            {
                "id": klass.id,
                "label": klass.label,
                "hashes": seen,
                "distinct_images": len(known),
                "checked": checked,
                "bit_identical": identical,
                "pin_pairs": not identical,
            }
        )
    report["pinned_classes"] = [c["id"] for c in report["classes"] if c["pin_pairs"]]
    return report


def _class_id(key: tuple[object, ...]) -> str:
    text = json.dumps(key, sort_keys=True, default=str)
    return "hw-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def _readable_device(name: str) -> str:
    """``"cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync"`` -> ``"NVIDIA H100 80GB HBM3"``:
    the index differs between GPUs of one host and must not split a class."""
    name = name.split(" : ", 1)[0].strip()
    match = re.match(r"^[a-z]+:\d+\s+(.+)$", name)
    return match.group(1) if match else name


def _accelerator_build(torch_version: str) -> str:
    """``"2.14.1+cu130"`` -> ``"13.0"``; ``"+rocm6.2"`` -> ``"rocm6.2"``; none or cpu -> ``""``."""
    local = torch_version.split("+", 1)[1] if "+" in torch_version else ""
    match = re.fullmatch(r"cu(\d+)(\d)", local)
    if match:
        return f"{match.group(1)}.{match.group(2)}"
    return "" if local in ("", "cpu") else local
