"""Further gated metrics: a suite's ``[gate.metrics.<name>]`` tables, and the multiplicity rule.

Besides its gate metric (``[suite] gate_metric``, CLIPScore by default), a suite may gate each
candidate config on further metrics, each with its own margin, an optional per-case band and
an optional prompt filter, e.g. text accuracy on the prompts that declare text::

    [gate.metrics.text_accuracy]
    margin = 0.05            # non-inferiority margin, in the metric's own units
    band = 0.25              # a case whose paired drop is larger fails (optional)
    prompts = "expected-text"  # or "all" (default), or a list of prompt keys

``band = "scaled"`` with ``band_sd = <image-level SD of the paired difference, in the metric's
units>`` (and optionally ``band_ceiling``) makes the band widen with the number of cases it
checks, as CLIPScore's does (``checks.case_band``), so that its false alarms stay bounded.

Multiplicity: every one of the k gated metrics of a suite (the gate metric included) is tested
at ``alpha / k`` (Bonferroni). A decision rests on monotone one-sided confidence bounds; bounds
at ``alpha / k`` keep that reading, and the chance that ANY of the k metrics wrongly reads
NON-INFERIOR stays at most ``alpha`` whatever the dependence between the metrics. A config
passes only when every gated metric is NON-INFERIOR. Pure: no pytest, no scipy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .checks import CaseBand

__all__ = [
    "ALL_PROMPTS",
    "EXPECTED_TEXT",
    "PROMPT_FILTERS",
    "GatedMetric",
    "MetricGateSpec",
    "band_failures",
    "bonferroni_alpha",
    "combine_decisions",
    "further_gates",
    "gate_metric_usage_problem",
    "parse_metric_gates",
    "planned_further_gates",
]

#: Prompt filters by name: every prompt, or those that declare the text their image shows.
ALL_PROMPTS = "all"
EXPECTED_TEXT = "expected-text"
PROMPT_FILTERS = (ALL_PROMPTS, EXPECTED_TEXT)
_GATE_KEYS = {"metrics": "a table per further gated metric: [gate.metrics.<name>]"}
_SPEC_KEYS = {"margin", "band", "band_sd", "band_ceiling", "prompts"}
#: ``band = "scaled"``: the band widens with the cases it checks (needs ``band_sd``).
SCALED = "scaled"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: Worst first: the order in which gated metrics' decisions combine into a config's.
_SEVERITY = ("inferior", "incomplete", "insufficient data", "inconclusive", "non-inferior")


class _Prompt(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def expected_text(self) -> str | None: ...


@dataclass(frozen=True)
class MetricGateSpec:
    """One further gated metric of a suite (``[gate.metrics.<metric>]``)."""

    metric: str
    margin: float
    band: float | None = None  # fixed per-case band in the metric's units; None: none (or scaled)
    prompts: str | tuple[str, ...] = ALL_PROMPTS  # a filter name or prompt keys
    band_sd: float | None = None  # set: the scaled band (``band = "scaled"``), in metric units
    band_ceiling: float | None = None  # the scaled band's cap (None: no cap)

    @property
    def scaled(self) -> bool:
        return self.band_sd is not None

    @property
    def has_band(self) -> bool:
        return self.band is not None or self.band_sd is not None

    def selects(self, prompt: _Prompt) -> bool:
        """Whether ``prompt`` is one this metric is gated on."""
        if self.prompts == ALL_PROMPTS:
            return True
        if self.prompts == EXPECTED_TEXT:
            return bool(prompt.expected_text)
        return prompt.key in self.prompts

    def describe_prompts(self) -> str:
        if isinstance(self.prompts, str):
            return self.prompts
        return ", ".join(self.prompts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "margin": self.margin,
            "band": SCALED if self.scaled else self.band,
            "band_sd": self.band_sd,
            "band_ceiling": self.band_ceiling,
            "prompts": self.prompts if isinstance(self.prompts, str) else list(self.prompts),
        }


def bonferroni_alpha(alpha: float, k: int) -> float:
    """The level of each of ``k`` gated metrics so that the family's error stays <= alpha."""
    if k < 1:
        raise ValueError(f"the number of gated metrics must be >= 1, got {k!r}")
    return alpha / k


def further_gates(specs: Sequence[MetricGateSpec], gate_metric: str) -> tuple[MetricGateSpec, ...]:
    """The further gated metrics in force: a table naming the gate metric itself is the gate
    metric's (``--zimage-gate-metric`` may have made it so), not a second test of it."""
    return tuple(spec for spec in specs if spec.metric != gate_metric)


@dataclass(frozen=True)
class GatedMetric:
    """A further gated metric as its sequential reading needs it (the plan and the stage hold
    read it exactly as the summary does): its margin and the prompts it is not gated on."""

    metric: str
    margin: float
    leave_out: frozenset[str] = frozenset()
    band: CaseBand | None = None  # its per-case band for this run (the plan sizes a scaled one)


def planned_further_gates(
    specs: Sequence[MetricGateSpec], gate_metric: str, prompts: Sequence[_Prompt]
) -> tuple[GatedMetric, ...]:
    """The further gated metrics in force, each with the prompts its filter leaves out (the
    plan adds each one's band, which needs the run's number of cases)."""
    return tuple(
        GatedMetric(
            spec.metric, spec.margin, frozenset(p.key for p in prompts if not spec.selects(p))
        )
        for spec in further_gates(specs, gate_metric)
    )


def combine_decisions(decisions: Collection[str]) -> str:
    """A config's decision from its gated metrics': INFERIOR if any is, NON-INFERIOR only if
    all are, else the first of INCOMPLETE, INSUFFICIENT DATA, INCONCLUSIVE that occurs."""
    if not decisions:
        raise ValueError("no decision to combine")
    for word in _SEVERITY:
        if word in decisions:
            return word
    unknown = sorted(set(decisions) - set(_SEVERITY))
    raise ValueError(f"unknown decisions {unknown}")


def gate_metric_usage_problem(
    name: str, builtins: Mapping[str, str], *, others_registered: bool, what: str
) -> str | None:
    """Why ``name`` cannot gate this run, known before generation, or None.

    ``builtins``: the run's built-in metrics (name -> kind); ``others_registered``: a conftest
    hook or an installed entry point may add metrics (whose names are known only once they are
    built, so an unknown name is refused here only when nothing else can add one); ``what``
    names the setting in the message (``--zimage-gate-metric``, ``[gate.metrics.x]``).
    """
    kind = builtins.get(name)
    gateable = sorted(n for n, k in builtins.items() if k == "reference_free")
    choices = ", ".join(gateable) + (" or a registered scorer's" if others_registered else "")
    if kind == "reference_based":
        return (
            f"{what} {name!r} compares with the reference image, so it cannot gate (a gate "
            f"pairs a metric of the image against its prompt with its reference's); name one "
            f"of: {choices}"
        )
    if kind is not None or others_registered:
        return None
    why = (
        "needs the OCR extra and a prompt that declares its text (expected_text, or quotes "
        "with [suite] text_from_quotes = true): pip install 'pytest-zimage-quality[ocr]'"
        if name == "text_accuracy"
        else "is not a metric of this run"
    )
    return (
        f"{what} {name!r} {why}; the metrics it can name here: {choices} (a scorer of your "
        "own is registered by a conftest hook or an entry point: docs/scorers.md)"
    )


class _Record(Protocol):
    @property
    def case_id(self) -> str: ...
    @property
    def is_reference(self) -> bool: ...
    def metric(self, name: str) -> float | None: ...
    def reference_metric(self, name: str) -> float | None: ...


def band_failures(
    record: _Record,
    prompt: _Prompt,
    specs: Sequence[MetricGateSpec],
    *,
    higher_is_better: Mapping[str, bool],
    labels: Mapping[str, str] | None = None,
    bands: Mapping[str, CaseBand] | None = None,
) -> list[str]:
    """Why a candidate case falls outside a further gated metric's per-case band: its value
    dropped from its reference image's (same prompt and seed) by more than ``band``, in the
    metric's bad direction. Metrics without a value for the case (not measured, or a prompt
    outside the metric's prompts) are not checked here: the config's gate says so.
    ``bands``: each metric's band as the plan sized it (a scaled band needs it; without it
    only a fixed band is checked)."""
    if record.is_reference:
        return []
    out = []
    for spec in specs:
        band = (bands or {}).get(spec.metric)
        width = band.width if band is not None else spec.band
        if width is None or not spec.selects(prompt) or spec.metric not in higher_is_better:
            continue
        value, reference = record.metric(spec.metric), record.reference_metric(spec.metric)
        if value is None or reference is None:
            continue
        if not (math.isfinite(value) and math.isfinite(reference)):
            continue
        sign = 1.0 if higher_is_better[spec.metric] else -1.0
        drop = sign * (value - reference)
        if drop < -width:
            label = (labels or {}).get(spec.metric, spec.metric)
            how = f"{band.describe()}, " if band is not None and band.mode == SCALED else ""
            out.append(
                f"{record.case_id}: {label} {value:.4g} vs reference {reference:.4g}: the "
                f"change {drop:+.4g} (in its better direction) is below -band {width:.4g} "
                f"({how}[gate.metrics.{spec.metric}] band)"
            )
    return out


Error = Callable[[str, str, str], Exception]


def parse_metric_gates(
    value: object,
    *,
    prompt_keys: Sequence[str],
    gate_metric: str,
    error: Error,
) -> tuple[MetricGateSpec, ...]:
    """The ``[gate]`` table of a suite file; ``error(key, message, hint)`` makes the
    exception for a bad entry (the suite parser's, naming the file and the key)."""
    if not isinstance(value, Mapping):
        raise error("gate", f"expected a table, got {_kind(value)}", _TABLE_HINT)
    for name in value:
        if name not in _GATE_KEYS:
            raise error(
                f"gate.{name}",
                f"unknown key {name!r}",
                f"known keys here: metrics ({_GATE_KEYS['metrics']})",
            )
    tables = value.get("metrics", {})
    if not isinstance(tables, Mapping):
        raise error("gate.metrics", f"expected a table, got {_kind(tables)}", _TABLE_HINT)
    specs = []
    for metric, table in tables.items():
        key = f"gate.metrics.{metric}"
        if not _NAME.fullmatch(str(metric)):
            raise error(
                key,
                f"{metric!r} is not a metric name",
                "name a metric of the run: text_accuracy, clip_image, psnr, ssim or a "
                "registered scorer's (lower-case letters, digits, _)",
            )
        if metric == gate_metric:
            raise error(
                key,
                f"{metric!r} is already the suite's gate metric ([suite] gate_metric), gated "
                "with the suite's margin",
                "remove this table, or set [suite] gate_metric to another metric",
            )
        if not isinstance(table, Mapping):
            raise error(key, f"expected a table, got {_kind(table)}", _TABLE_HINT)
        for name in table:
            if name not in _SPEC_KEYS:
                raise error(
                    f"{key}.{name}",
                    f"unknown key {name!r}",
                    f"known keys here: {', '.join(sorted(_SPEC_KEYS))} (check the spelling)",
                )
        if "margin" not in table:
            raise error(
                key,
                "missing required key 'margin'",
                "add margin = <the largest drop to accept, in the metric's own units>, "
                "e.g. margin = 0.05 for text accuracy",
            )
        margin = _positive(table["margin"], f"{key}.margin", error, zero=False)
        band, band_sd, ceiling = _band(table, key, error)
        prompts = _prompts(table.get("prompts", ALL_PROMPTS), f"{key}.prompts", prompt_keys, error)
        specs.append(
            MetricGateSpec(
                metric=str(metric),
                margin=margin,
                band=band,
                prompts=prompts,
                band_sd=band_sd,
                band_ceiling=ceiling,
            )
        )
    return tuple(specs)


def _band(
    table: Mapping[str, object], key: str, error: Error
) -> tuple[float | None, float | None, float | None]:
    """(fixed band, scaled band's SD, its ceiling) of one ``[gate.metrics.<name>]`` table."""
    value = table.get("band")
    if isinstance(value, str) and value != SCALED:
        raise error(
            f"{key}.band",
            f"unknown band {value!r}",
            'write band = <a number in the metric\'s units> (fixed) or band = "scaled" with '
            "band_sd = ... (docs/metrics.md)",
        )
    if value != SCALED:
        for name in ("band_sd", "band_ceiling"):
            if name in table:
                raise error(
                    f"{key}.{name}",
                    f"{name} applies only to the scaled band",
                    f'write band = "scaled" with band_sd = <the paired SD per image, in the '
                    f"metric's units>, or remove {name} (band = <number> is a fixed band)",
                )
        band = _positive(value, f"{key}.band", error, zero=True) if "band" in table else None
        return band, None, None
    if "band_sd" not in table:
        raise error(
            f"{key}.band",
            'band = "scaled" needs band_sd',
            "add band_sd = <the SD of one image's paired difference with no true change, in "
            "the metric's units>, e.g. band_sd = 0.08 for text accuracy (docs/metrics.md)",
        )
    sd = _positive(table["band_sd"], f"{key}.band_sd", error, zero=False)
    ceiling = (
        _positive(table["band_ceiling"], f"{key}.band_ceiling", error, zero=False)
        if "band_ceiling" in table
        else None
    )
    return None, sd, ceiling


_TABLE_HINT = (
    "write [gate.metrics.<name>] with margin = ..., and optionally band = ... (a number, or "
    "'scaled' with band_sd = ...) and prompts = 'expected-text' (docs/metrics.md)"
)


def _positive(value: object, key: str, error: Error, *, zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(key, f"expected a number, got {_kind(value)}", "write e.g. 0.05")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not zero):
        low = ">= 0" if zero else "> 0"
        raise error(key, f"{value} is not a finite number {low}", "write e.g. 0.05")
    return number


def _prompts(
    value: object, key: str, prompt_keys: Sequence[str], error: Error
) -> str | tuple[str, ...]:
    hint = (
        f"write prompts = {PROMPT_FILTERS[1]!r} (prompts that declare their text), "
        f"{PROMPT_FILTERS[0]!r}, or a list of prompt keys"
    )
    if isinstance(value, str):
        if value not in PROMPT_FILTERS:
            raise error(key, f"unknown prompt filter {value!r}", hint)
        return value
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise error(
            key, f"expected a filter name or a list of prompt keys, got {_kind(value)}", hint
        )
    unknown = [v for v in value if v not in prompt_keys]
    if unknown:
        raise error(
            key,
            f"prompt {unknown[0]!r} is not a prompt of this suite",
            f"the suite's prompts: {', '.join(prompt_keys)}",
        )
    return tuple(dict.fromkeys(value))


def _kind(value: object) -> str:
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return type(value).__name__
