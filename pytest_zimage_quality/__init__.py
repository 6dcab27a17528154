"""pytest-zimage-quality: a pytest quality gate for text-to-image model swaps served by ComfyUI.

Importing this package imports nothing heavy (no torch, open_clip, lpips or httpx).
"""

from __future__ import annotations

from .errors import (
    ComfyUIError,
    ComfyUIHTTPError,
    ComfyUIProtocolError,
    ComfyUIUnreachableError,
    GenerationFailedError,
    GenerationInterruptedError,
    GenerationTimeoutError,
    ImageDecodeError,
    ImageError,
    ImageSizeMismatchError,
    ModelFilesMissingError,
    ScorerError,
    SuiteError,
    WeightsNotFoundError,
    WorkflowRejectedError,
    ZImageError,
    ZImageWarning,
)
from .suite import Case, ConfigSpec, ExpectedFail, Prompt, Suite, load_suite

__version__ = "0.1.0"

__all__ = [
    "Case",
    "ComfyUIError",
    "ComfyUIHTTPError",
    "ComfyUIProtocolError",
    "ComfyUIUnreachableError",
    "ConfigSpec",
    "ExpectedFail",
    "GenerationFailedError",
    "GenerationInterruptedError",
    "GenerationTimeoutError",
    "ImageDecodeError",
    "ImageError",
    "ImageSizeMismatchError",
    "ModelFilesMissingError",
    "Prompt",
    "ScorerError",
    "Suite",
    "SuiteError",
    "WeightsNotFoundError",
    "WorkflowRejectedError",
    "ZImageError",
    "ZImageWarning",
    "__version__",
    "load_suite",
]
