"""Protocol contract suite: the same checks against FakeComfyUI and a real ComfyUI."""

from __future__ import annotations
