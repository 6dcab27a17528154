"""The scorer plug-in interface: what a metric is, and how its batched results are checked.

Every metric of a run, the built-in CLIPScore and LPIPS included, is one :class:`ScorerSpec`:
a name, a kind (reference-free, compared with the prompt; or reference-based, compared with
the reference image of the same prompt and seed), a direction, a batched ``score`` function,
its device and its weights' identity. Specs come from the ``pytest_zimage_register_scorers``
hook (a ``conftest.py`` or a plugin) and from installed packages through the entry-point group
:data:`ENTRY_POINT_GROUP`; the scoring worker runs them all the same way, and their values reach
each case's record, the summary, the reports and JUnit as ``metrics[name]`` (docs/scorers.md).

``score`` takes one :class:`ScoreBatch` (the decoded images, their prompts, and for a
reference-based metric their reference images) and returns one number per image, or a pair
``(numbers, details)`` whose details are short per-image strings (what OCR read). One argument
rather than positional lists, so that what a batch carries can grow without breaking anyone's
scorer. Pure: nothing here imports torch, pytest or a scorer library.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "REFERENCE_BASED",
    "REFERENCE_FREE",
    "MetricInfo",
    "PromptInfo",
    "ScoreBatch",
    "ScorerSpec",
    "ScorerSpecError",
    "check_specs",
    "finite_or_none",
    "read_result",
]

#: The entry-point group an installed package declares its scorers under (pyproject:
#: ``[project.entry-points."pytest_zimage_quality.scorers"] name = "pkg.module:factory"``).
ENTRY_POINT_GROUP = "pytest_zimage_quality.scorers"

REFERENCE_FREE: Final = "reference_free"
REFERENCE_BASED: Final = "reference_based"
KINDS = (REFERENCE_FREE, REFERENCE_BASED)
Kind = Literal["reference_free", "reference_based"]

#: A metric name: it keys records, names table columns, JUnit properties and JSON fields.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class ScorerSpecError(ValueError):
    """A registered scorer is malformed (bad name, kind, duplicate...) or broke its contract."""


@dataclass(frozen=True)
class PromptInfo:
    """What a scorer may know about an image's prompt."""

    key: str
    text: str
    tags: tuple[str, ...] = ()
    #: The text the image should show (declared, or quoted when the suite says so), else None.
    expected_text: str | None = None

    @classmethod
    def of(cls, prompt: Any) -> PromptInfo:
        """From a suite's ``Prompt`` (or anything with its ``key``, ``text``, ``tags``)."""
        return cls(
            key=str(prompt.key),
            text=str(prompt.text),
            tags=tuple(getattr(prompt, "tags", ())),
            expected_text=getattr(prompt, "expected_text", None),
        )


@dataclass(frozen=True)
class ScoreBatch:
    """One batch for one scorer: ``images[i]`` was generated from ``prompts[i]``.

    ``images`` are decoded 8-bit RGB ``(3, H, W)`` torch tensors on the run's scorer device;
    ``keys`` are unique per image in the run (``suite/case id``). For a reference-based
    scorer, ``references[i]`` is the reference image of the same prompt and seed (same size)
    and ``reference_keys[i]`` its key; both are empty for a reference-free one.
    """

    images: Sequence[Any]
    prompts: Sequence[PromptInfo]
    keys: Sequence[str]
    references: Sequence[Any] = ()
    reference_keys: Sequence[str] = ()

    def __len__(self) -> int:
        return len(self.images)

    @property
    def texts(self) -> list[str]:
        """The prompts' texts, for scorers that only need those."""
        return [p.text for p in self.prompts]


ScoreResult = Sequence[float] | tuple[Sequence[float], Sequence[str]]


@dataclass(frozen=True)
class ScorerSpec:
    """One registered metric (see the module docstring and docs/scorers.md).

    - ``name``: lower-case identifier (``[a-z][a-z0-9_]*``, at most 40 characters), unique in
      the run; ``label`` is its display name (defaults to ``name``).
    - ``kind``: :data:`REFERENCE_FREE` (an image against its prompt: the gate pairs a
      candidate's value with its reference image's) or :data:`REFERENCE_BASED` (a candidate
      against its reference image: references get no value).
    - ``higher_is_better``: the direction; the gate flips the sign of lower-is-better metrics.
    - ``score``: ``score(batch: ScoreBatch)`` -> one float per image, or ``(floats, details)``.
    - ``device``: where it computes (reported); ``weights_identity``: what identifies its
      numbers (a weights file's sha256, ``"random"``, ``""`` for a formula).
    - ``background``: run on a CPU thread beside the scoring thread (CPU-bound scorers such as
      OCR), so the device scorers never wait for it.
    - ``applies``: which prompts it scores (default all); the others get no value.
    - ``prepare``: called once on the main thread with every prompt of the run before scoring
      starts (CLIPScore encodes the prompts there, so a truncation warning reaches a test).
    - ``info``: plain facts about the scorer for summary.json (model, library, ...).
    - ``close_below`` / ``close_above``: a reference-based metric's closeness threshold for the
      two-axis reading (``[suite] distance_metric``): a distance (lower is better) is "close"
      below ``close_below``, a similarity (higher is better) above ``close_above``.
    """

    name: str
    kind: Kind
    higher_is_better: bool
    score: Callable[[ScoreBatch], ScoreResult]
    device: str = "cpu"
    weights_identity: str = ""
    label: str = ""
    background: bool = False
    applies: Callable[[PromptInfo], bool] | None = field(default=None, compare=False)
    prepare: Callable[[Sequence[PromptInfo]], None] | None = field(default=None, compare=False)
    info: Callable[[], Mapping[str, Any]] | None = field(default=None, compare=False)
    close_below: float | None = None
    close_above: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ScorerSpecError(
                f"scorer name {self.name!r} is not a lower-case identifier "
                "([a-z][a-z0-9_]*, at most 40 characters): it names columns and JSON fields"
            )
        if self.kind not in KINDS:
            raise ScorerSpecError(
                f"scorer {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}"
            )
        if not isinstance(self.higher_is_better, bool):
            raise ScorerSpecError(f"scorer {self.name!r}: higher_is_better must be True or False")
        if not callable(self.score):
            raise ScorerSpecError(f"scorer {self.name!r}: score must be callable")
        if not self.label:
            object.__setattr__(self, "label", self.name)
        _check_closeness(
            self.name, self.kind, self.higher_is_better, self.close_below, self.close_above
        )

    @property
    def reference_based(self) -> bool:
        return self.kind == REFERENCE_BASED

    def wants(self, prompt: PromptInfo) -> bool:
        return self.applies is None or bool(self.applies(prompt))

    def describe(self) -> MetricInfo:
        """The plain facts the summary and the reports need (no callables)."""
        facts: dict[str, Any] = {}
        if self.info is not None:
            facts = {str(k): v for k, v in dict(self.info()).items()}
        return MetricInfo(
            name=self.name,
            label=self.label,
            kind=self.kind,
            higher_is_better=self.higher_is_better,
            device=str(self.device),
            weights_identity=self.weights_identity,
            background=self.background,
            facts=facts,
            close_below=self.close_below,
            close_above=self.close_above,
        )


def _check_closeness(
    name: str, kind: str, higher: bool, below: float | None, above: float | None
) -> None:
    """A closeness threshold belongs to a reference-based metric, on its own side."""
    if below is None and above is None:
        return
    if kind != REFERENCE_BASED:
        raise ScorerSpecError(
            f"scorer {name!r}: close_below/close_above apply to a reference-based metric only "
            "(closeness to the reference image)"
        )
    if below is not None and above is not None:
        raise ScorerSpecError(f"scorer {name!r}: give close_below or close_above, not both")
    value = below if below is not None else above
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScorerSpecError(f"scorer {name!r}: a closeness threshold must be a finite number")
    if below is not None and higher:
        raise ScorerSpecError(
            f"scorer {name!r}: close_below is for a distance (higher_is_better=False); a "
            "similarity is close above a threshold: use close_above"
        )
    if above is not None and not higher:
        raise ScorerSpecError(
            f"scorer {name!r}: close_above is for a similarity (higher_is_better=True); a "
            "distance is close below a threshold: use close_below"
        )


@dataclass(frozen=True)
class MetricInfo:
    """A metric as the summary knows it: JSON-ready, travels from xdist workers."""

    name: str
    label: str
    kind: str
    higher_is_better: bool
    device: str = ""
    weights_identity: str = ""
    background: bool = False
    facts: Mapping[str, Any] = field(default_factory=dict)
    close_below: float | None = None  # a distance's closeness threshold (two-axis reading)
    close_above: float | None = None  # a similarity's

    @property
    def reference_based(self) -> bool:
        return self.kind == REFERENCE_BASED

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "higher_is_better": self.higher_is_better,
            "device": self.device,
            "weights_identity": self.weights_identity,
            "background": self.background,
            "facts": dict(self.facts),
            "close_below": self.close_below,
            "close_above": self.close_above,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricInfo:
        return cls(
            name=str(data["name"]),
            label=str(data.get("label") or data["name"]),
            kind=str(data.get("kind", REFERENCE_FREE)),
            higher_is_better=bool(data.get("higher_is_better", True)),
            device=str(data.get("device", "")),
            weights_identity=str(data.get("weights_identity", "")),
            background=bool(data.get("background", False)),
            facts=dict(data.get("facts") or {}),
            close_below=_number_or_none(data.get("close_below")),
            close_above=_number_or_none(data.get("close_above")),
        )


def _number_or_none(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def check_specs(
    specs: Iterable[object], *, origin: Mapping[int, str] | None = None
) -> list[ScorerSpec]:
    """The specs, checked: each a :class:`ScorerSpec`, names unique. ``origin`` maps a spec's
    ``id`` to where it came from, for the message."""
    checked: list[ScorerSpec] = []
    seen: dict[str, str] = {}
    for spec in specs:
        where = (origin or {}).get(id(spec), "")
        if not isinstance(spec, ScorerSpec):
            raise ScorerSpecError(
                f"{where or 'a scorer hook'} returned {type(spec).__name__}, not a ScorerSpec "
                "(from pytest_zimage_quality import ScorerSpec)"
            )
        if spec.name in seen:
            raise ScorerSpecError(
                f"two scorers are named {spec.name!r} ({seen[spec.name] or 'a hook'} and "
                f"{where or 'a hook'}): give each metric its own name"
            )
        seen[spec.name] = where
        checked.append(spec)
    return checked


def read_result(spec: ScorerSpec, result: object, n: int) -> tuple[list[float], list[str]]:
    """``score``'s return value as ``n`` floats and ``n`` details ("" where none).

    ``(values, details)`` is told from plain values by its two parts being sequences. A wrong
    length, a non-number or a NaN raises :class:`ScorerSpecError` naming the scorer: a metric
    the scorer could not compute is an error, never an invented value. ``inf`` is kept (PSNR
    of identical images).
    """
    details: list[str] = [""] * n
    values: object = result
    if (
        isinstance(result, tuple)
        and len(result) == 2
        and all(isinstance(part, Sequence) and not isinstance(part, str) for part in result)
    ):
        values, raw_details = result
        details = [str(d) for d in raw_details]
    if hasattr(values, "tolist"):  # a numpy array or a torch tensor
        values = values.tolist()
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise ScorerSpecError(
            f"scorer {spec.name!r} returned {type(result).__name__}; expected a list of "
            f"{n} floats, or (floats, details)"
        )
    if len(values) != n or len(details) != n:
        raise ScorerSpecError(
            f"scorer {spec.name!r} returned {len(values)} values and {len(details)} details "
            f"for {n} images"
        )
    out = []
    for value in values:
        if isinstance(value, bool) or not (isinstance(value, int | float) or _is_scalar(value)):
            raise ScorerSpecError(
                f"scorer {spec.name!r} returned {value!r} ({type(value).__name__}), not a number"
            )
        number = float(value)
        if math.isnan(number):
            raise ScorerSpecError(f"scorer {spec.name!r} returned NaN: it could not score an image")
        out.append(number)
    return out, details


def _is_scalar(value: object) -> bool:
    """numpy / torch scalars (``float()`` works on them)."""
    return hasattr(value, "item") and hasattr(value, "__float__")


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
