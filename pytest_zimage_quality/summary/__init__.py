"""The run summary: typed results built from records (:mod:`.build`, types in :mod:`.model`).

summary.json is ``RunSummary.to_dict()``; the terminal tables and the HTML report render the
same objects, so the three can never disagree. Importing the package (the types) imports
no scipy; the builders load it when first used.
"""

from __future__ import annotations

from .model import (
    ADVISORY_BANNER,
    NO_DATA,
    RANDOM_BANNER,
    REFERENCE,
    SCHEMA_VERSION,
    SIMULATED_BANNER,
    ConfigSummary,
    Environment,
    ExitDecision,
    Parameter,
    PromptCell,
    PromptSummary,
    Reference,
    RunSummary,
    ServerSummary,
    Speed,
    SuiteSummary,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .build import build_summary, describe_settings
    from .gate import config_gate, exit_decision, gate_decision

#: Names whose module imports scipy (through stats): imported when first used.
_LAZY = {
    "build_summary": "build",
    "describe_settings": "build",
    "config_gate": "gate",
    "exit_decision": "gate",
    "gate_decision": "gate",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib  # noqa: PLC0415 - scipy only when a summary is built

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ADVISORY_BANNER",
    "NO_DATA",
    "RANDOM_BANNER",
    "REFERENCE",
    "SCHEMA_VERSION",
    "SIMULATED_BANNER",
    "ConfigSummary",
    "Environment",
    "ExitDecision",
    "Parameter",
    "PromptCell",
    "PromptSummary",
    "Reference",
    "RunSummary",
    "ServerSummary",
    "Speed",
    "SuiteSummary",
    "build_summary",
    "config_gate",
    "describe_settings",
    "exit_decision",
    "gate_decision",
]
