"""Helpers the tests share: import them from here (``from tests.helpers import ...``).

The scorer doubles import torch, so they stay in ``tests.helpers.doubles``, imported only by
the tests that inject them.
"""

from __future__ import annotations

from .suites import (
    EXAMPLE_SUITE,
    EXAMPLE_WORKFLOW,
    MORE_PROMPTS,
    REPO,
    SMALL_SUITE,
    TRANSCRIPTS,
    copy_example_suite,
    more_prompts,
    small_workflow,
    write_small_suite,
)

__all__ = [
    "EXAMPLE_SUITE",
    "EXAMPLE_WORKFLOW",
    "MORE_PROMPTS",
    "REPO",
    "SMALL_SUITE",
    "TRANSCRIPTS",
    "copy_example_suite",
    "more_prompts",
    "small_workflow",
    "write_small_suite",
]
