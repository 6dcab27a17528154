"""Rendering: the run summary as the terminal shows it (:mod:`.terminal`) and as report.html
(:mod:`.html`). Formatting only: every number comes from the summary."""

from __future__ import annotations
