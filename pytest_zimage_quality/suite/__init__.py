"""Read and validate a suite file into frozen ``Suite`` / ``Prompt`` / ``ConfigSpec`` / ``Case``.

A suite is one TOML file (format: docs/suite-format.md): the workflow template, where the
prompt text and the seed go, the reference config, the configs as input overrides, the
prompts, the seeds, optional gate parameters and expected-fail declarations. Every problem is
a ``SuiteError`` naming the file, the key and the fix; nothing here imports pytest or torch.
"""

from __future__ import annotations

from ..settings import MAX_SEED
from ._load import load_suite
from ._model import Case, ConfigSpec, ExpectedFail, Prompt, Suite

__all__ = [
    "MAX_SEED",
    "Case",
    "ConfigSpec",
    "ExpectedFail",
    "Prompt",
    "Suite",
    "load_suite",
]
