"""pytest-zimage-quality: a pytest quality gate for text-to-image model swaps served by ComfyUI.

Importing this package imports nothing heavy (no torch, open_clip, lpips or httpx): the
client, the scorers and the statistics are imported on first access of their names.
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
)
from .metrics import (
    REFERENCE_BASED,
    REFERENCE_FREE,
    PromptInfo,
    ScoreBatch,
    ScorerSpec,
    ScorerSpecError,
)
from .suite import Case, ConfigSpec, ExpectedFail, Prompt, Suite, load_suite

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._warning import ZImageWarning
    from .comfyui import ComfyUIClient
    from .scorers import CLIPScorer, LPIPSScorer
    from .stats import GateResult, noninferiority_gate

__version__ = "0.1.0"

#: Public names whose modules pull in httpx, torch or scipy: imported when first used.
_LAZY = {
    "ComfyUIClient": "comfyui",
    "CLIPScorer": "scorers",
    "LPIPSScorer": "scorers",
    "GateResult": "stats",
    "noninferiority_gate": "stats",
    "ZImageWarning": "errors",  # a pytest.PytestWarning: pytest loads on first use
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib  # noqa: PLC0415

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "REFERENCE_BASED",
    "REFERENCE_FREE",
    "CLIPScorer",
    "Case",
    "ComfyUIClient",
    "ComfyUIError",
    "ComfyUIHTTPError",
    "ComfyUIProtocolError",
    "ComfyUIUnreachableError",
    "ConfigSpec",
    "ExpectedFail",
    "GateResult",
    "GenerationFailedError",
    "GenerationInterruptedError",
    "GenerationTimeoutError",
    "ImageDecodeError",
    "ImageError",
    "ImageSizeMismatchError",
    "LPIPSScorer",
    "ModelFilesMissingError",
    "Prompt",
    "PromptInfo",
    "ScoreBatch",
    "ScorerError",
    "ScorerSpec",
    "ScorerSpecError",
    "Suite",
    "SuiteError",
    "WeightsNotFoundError",
    "WorkflowRejectedError",
    "ZImageError",
    "ZImageWarning",
    "__version__",
    "load_suite",
    "noninferiority_gate",
]
