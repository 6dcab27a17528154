"""Pure statistics for the Z-Image quality gate (numpy and scipy only: no pytest, no torch).

Functions take plain sequences (or mappings of prompt -> per-seed scores, seeds aligned by
position) and return frozen dataclasses whose ``to_dict()`` is JSON-ready. docs/statistics.md
explains every choice. The modules, in the order the data flows:

- ``_common``: validation and pairing; ``_describe``: describe, speedup, LPIPS bands, two axes;
- ``_monotone``: monotone one-sided confidence bounds (the gate's test);
- ``_verdicts``: the verdict vocabulary, ``decide`` (bounds -> verdict), ``gate_exit``;
- ``_power``: the variance prior and the power plan made before the run;
- ``_gate``: ``noninferiority_gate``; ``_companions``: Wilcoxon and bootstrap alongside;
- ``_sequential``: group-sequential stages (Lan-DeMets alpha-spending, linear by default, with
  T* boundaries calibrated look by look);
- ``_per_prompt``: the descriptive per-prompt table, Holm-adjusted.
"""

from __future__ import annotations

from ._common import ScoreTable
from ._describe import LPIPS_BANDS, Description, describe, lpips_band, speedup, two_axis_verdict
from ._gate import GateResult, noninferiority_gate
from ._monotone import critical_value, min_prompts, monotone_bounds
from ._per_prompt import PromptComparison, holm_adjust, per_prompt_comparisons
from ._power import DEFAULT_PRIOR, PowerPlan, VariancePrior, observed_mdd, plan_power
from ._sequential import (
    Look,
    SequentialDesign,
    SequentialResult,
    calibrated_design,
    linear_spending,
    obrien_fleming_spending,
    pocock_spending,
    sequential_design,
    sequential_gate,
)
from ._sequential_power import sequential_mdd_effect, sequential_power
from ._verdicts import (
    DECISION_LABELS,
    DECISIONS,
    FAIL,
    INCOMPLETE,
    INCONCLUSIVE,
    INFERIOR,
    INSUFFICIENT,
    LEGACY_VERDICT,
    NON_INFERIOR,
    PASS,
    VERDICTS,
    Decision,
    ExitDecision,
    Verdict,
    decide,
    gate_exit,
)

__all__ = [
    "DECISIONS",
    "DECISION_LABELS",
    "DEFAULT_PRIOR",
    "FAIL",
    "INCOMPLETE",
    "INCONCLUSIVE",
    "INFERIOR",
    "INSUFFICIENT",
    "LEGACY_VERDICT",
    "LPIPS_BANDS",
    "NON_INFERIOR",
    "PASS",
    "VERDICTS",
    "Decision",
    "Description",
    "ExitDecision",
    "GateResult",
    "Look",
    "PowerPlan",
    "PromptComparison",
    "ScoreTable",
    "SequentialDesign",
    "SequentialResult",
    "VariancePrior",
    "Verdict",
    "calibrated_design",
    "critical_value",
    "decide",
    "describe",
    "gate_exit",
    "holm_adjust",
    "linear_spending",
    "lpips_band",
    "min_prompts",
    "monotone_bounds",
    "noninferiority_gate",
    "obrien_fleming_spending",
    "observed_mdd",
    "per_prompt_comparisons",
    "plan_power",
    "pocock_spending",
    "sequential_design",
    "sequential_gate",
    "sequential_mdd_effect",
    "sequential_power",
    "speedup",
    "two_axis_verdict",
]
