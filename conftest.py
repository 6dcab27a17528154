"""Root conftest: the project's own tests use pytester and the fake ComfyUI's fixtures."""

from __future__ import annotations

pytest_plugins = ["pytester", "pytest_zimage_quality.testing"]
