"""Reading a baseline: the summary.json (or the report directory holding it) of an earlier
run, its results.jsonl, and the summary's configs, prompts and case outcomes as plain data
(the summary.json shape is stable across the plugin's versions)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import ZImageError
from ..provenance import Lane, lanes_from_summary

__all__ = [
    "FAILING_VERDICTS",
    "PASSING_VERDICTS",
    "Baseline",
    "BaselineError",
    "Label",
    "config_passes",
    "load_baseline",
]


Label = Literal["new", "inherited", "no baseline"]

#: Config verdicts that let a run pass: ``stats``' decision NON-INFERIOR, or its schema-1 name
#: "pass" (compared in lower case; kept here so that reading a baseline loads no scipy).
PASSING_VERDICTS = frozenset({"pass", "non-inferior"})
#: Verdicts that judged the config and did not show it fine (INCOMPLETE, "no data": not judged).
FAILING_VERDICTS = frozenset({"fail", "inferior", "inconclusive", "insufficient data"})


class BaselineError(ZImageError):
    """Raised when a baseline cannot be used: missing, unreadable, or from another lane."""

    default_hint = (
        "pass a previous run's summary.json or its report directory "
        "(for example the report artifact of main's last green run)"
    )


def config_passes(verdict: object) -> bool:
    return str(verdict or "").lower() in PASSING_VERDICTS


def _judged_failing(verdict: object) -> bool:
    return str(verdict or "").lower() in FAILING_VERDICTS


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _difference(now: float | None, then: float | None) -> float | None:
    return None if now is None or then is None else now - then


@dataclass(frozen=True)
class _ConfigState:
    label: str
    role: str
    verdict: str
    mean_diff: float | None
    lower_bound: float | None


def _configs(summary: Mapping[str, Any]) -> dict[tuple[str, str], _ConfigState]:
    out = {}
    for suite in summary.get("suites") or []:
        for config in suite.get("configs") or []:
            gate = config.get("gate") or {}
            out[(str(suite.get("name")), str(config.get("key")))] = _ConfigState(
                label=str(config.get("label") or config.get("key")),
                role=str(config.get("role") or "candidate"),
                # ``decision`` (issue 11's vocabulary) where the summary has it, else ``verdict``
                verdict=str(config.get("decision") or config.get("verdict") or "no data"),
                mean_diff=_number(gate.get("mean_diff")),
                lower_bound=_number(gate.get("lower_bound")),
            )
    return out


def _prompt_deltas(summary: Mapping[str, Any]) -> dict[tuple[str, str, str], float | None]:
    out = {}
    for suite in summary.get("suites") or []:
        for prompt in suite.get("prompts") or []:
            for config, cell in (prompt.get("cells") or {}).items():
                if "delta" in cell:
                    key = (str(suite.get("name")), str(config), str(prompt.get("key")))
                    out[key] = _number(cell.get("delta"))
    return out


def _case_outcomes(cases: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    return {
        (str(case.get("suite")), str(case.get("case_id"))): str(
            case.get("verdict") or case.get("outcome") or ""
        )
        for case in cases
        if case.get("case_id")
    }


@dataclass(frozen=True)
class Baseline:
    """A loaded baseline run."""

    path: Path
    summary: Mapping[str, Any] = field(repr=False)
    #: (suite, case id) -> outcome; None when the run's per-case results were not found
    cases: Mapping[tuple[str, str], str] | None = field(repr=False, default=None)

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or "")

    @property
    def created(self) -> str:
        return str(self.summary.get("created") or "")

    @property
    def lanes(self) -> list[Lane]:
        return lanes_from_summary(self.summary)


def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{what} {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{what} {path}: cannot be read ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"{what} {path}: not valid JSON (line {exc.lineno}: {exc.msg})"
        ) from None


def _summary_file(path: Path) -> Path:
    if path.is_dir():
        for candidate in (path / "summary.json", path / "latest" / "summary.json"):
            if candidate.is_file():
                return candidate
        raise BaselineError(f"baseline {path}: the directory holds no summary.json")
    return path


def load_baseline(path: Path | str) -> Baseline:
    """Read a baseline: a summary.json, or a report directory holding one.

    Raises :class:`BaselineError` (one line naming the file and the cause) when it is
    missing, not JSON, or not a pytest-zimage-quality summary.
    """
    file = _summary_file(Path(path))
    summary = _read_json(file, "baseline")
    if not (
        isinstance(summary, dict)
        and summary.get("plugin") == "pytest-zimage-quality"
        and isinstance(summary.get("suites"), list)
    ):
        raise BaselineError(f"baseline {file}: not a pytest-zimage-quality summary.json")
    cases: dict[tuple[str, str], str] | None = None
    if isinstance(summary.get("cases"), list):
        cases = _case_outcomes(c for c in summary["cases"] if isinstance(c, Mapping))
    else:
        results = file.parent / str(summary.get("results_file") or "results.jsonl")
        if results.is_file():
            cases = _case_outcomes(_read_jsonl(results))
    return Baseline(path=file, summary=summary, cases=cases)


def _read_jsonl(path: Path) -> list[Mapping[str, Any]]:
    """The readable lines of a results.jsonl (a run killed mid-write may leave a torn last
    line, which is skipped: it is that case's result that was never completed)."""
    rows: list[Mapping[str, Any]] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
