"""What differs between the ComfyUI versions the fake can emulate.

The reference is 0.18.1 (it has Z-Image and ``/api/jobs``); 0.3.64 is the older release the
protocol README also recorded. Only differences a client can observe are modelled here, read
from the two sets of recordings in ``tests/transcripts/``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "SENSITIVE_EXTRA_DATA_KEYS",
    "VersionProfile",
]

#: extra_data keys ComfyUI keeps out of history (and, in 0.18.1, out of /queue).
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")

_MODEL_FOLDERS_0_18 = (
    "checkpoints",
    "configs",
    "loras",
    "vae",
    "text_encoders",
    "diffusion_models",
    "clip_vision",
    "style_models",
    "embeddings",
    "diffusers",
    "vae_approx",
    "controlnet",
    "gligen",
    "upscale_models",
    "latent_upscale_models",
    "custom_nodes",
    "hypernetworks",
    "photomaker",
    "classifiers",
    "model_patches",
    "audio_encoders",
)

# Keys 0.18.1 added to each /object_info entry.
_OBJECT_INFO_KEYS_0_18 = ("is_input_list", "has_intermediate_output", "search_aliases")


def _parse(version: str) -> tuple[int, ...]:
    numbers = re.findall(r"\d+", version)
    return tuple(int(n) for n in numbers[:3]) or (0,)


class VersionProfile:
    """The observable behaviour of one ComfyUI version (``modern`` means 0.4 and later)."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.modern = _parse(version) >= (0, 4)

    @property
    def os_name(self) -> str:
        """``system.os``: ``sys.platform`` since 0.4, ``os.name`` before."""
        return "linux" if self.modern else "posix"

    @property
    def required_frontend_version(self) -> str:
        return "1.42.8" if self.modern else "1.27.10"

    @property
    def required_templates_version(self) -> str:
        return "0.9.44" if self.modern else "0.1.95"

    @property
    def has_jobs_api(self) -> bool:
        return self.modern

    @property
    def adds_create_time(self) -> bool:
        """0.18.1 stamps ``extra_data.create_time`` (ms) on every queued job."""
        return self.modern

    @property
    def throttles_progress(self) -> bool:
        """0.18.1 throttles progress bars (first, last, every >= 100 ms and >= 0.5 %)."""
        return self.modern

    def model_folders(self) -> list[str]:
        folders = list(_MODEL_FOLDERS_0_18)
        if not self.modern:
            folders.remove("latent_upscale_models")
        return folders

    def features(self) -> dict[str, Any]:
        """GET /features and the WebSocket ``feature_flags`` reply."""
        flags: dict[str, Any] = {"supports_preview_metadata": True, "max_upload_size": 104857600}
        if self.modern:
            flags["extension"] = {"manager": {"supports_v4": True}}
            flags["node_replacements"] = True
            flags["assets"] = False
        return flags

    def strip_object_info(self, info: dict[str, Any]) -> dict[str, Any]:
        """Drop the /object_info keys the older version does not send."""
        if self.modern:
            return info
        for key in (*_OBJECT_INFO_KEYS_0_18, "essentials_category"):
            info.pop(key, None)
        return info

    def missing_class_type_error(self, node_id: str, node: dict[str, Any]) -> dict[str, Any]:
        """The 400 ``error`` for a node without ``class_type``."""
        if not self.modern:
            return {
                "type": "invalid_prompt",
                "message": "Cannot execute because a node is missing the class_type property.",
                "details": f"Node ID '#{node_id}'",
                "extra_info": {},
            }
        meta = node.get("_meta", {})
        title = meta.get("title") if isinstance(meta, dict) else None
        return {
            "type": "missing_node_type",
            "message": f"Node '{title or f'ID #{node_id}'}' has no class_type. "
            "The workflow may be corrupted or a custom node is missing.",
            "details": f"Node ID '#{node_id}'",
            "extra_info": {"node_id": node_id, "class_type": None, "node_title": title},
        }

    def unknown_class_error(
        self, node_id: str, node: dict[str, Any], class_type: Any
    ) -> dict[str, Any]:
        """The 400 ``error`` for a node naming a class the server does not have."""
        if not self.modern:
            return {
                "type": "invalid_prompt",
                "message": f"Cannot execute because node {class_type} does not exist.",
                "details": f"Node ID '#{node_id}'",
                "extra_info": {},
            }
        meta = node.get("_meta", {})
        title = meta.get("title", class_type) if isinstance(meta, dict) else class_type
        return {
            "type": "missing_node_type",
            "message": f"Node '{title}' not found. The custom node may not be installed.",
            "details": f"Node ID '#{node_id}'",
            "extra_info": {"node_id": node_id, "class_type": class_type, "node_title": title},
        }
