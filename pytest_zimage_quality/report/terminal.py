"""Terminal output: the report header and the summary tables. Formatting only.

Everything shown is read from the run summary (``summary.build_summary``), the same object
written to summary.json, so the terminal, the JSON and the HTML report cannot disagree.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..session import ZImageSession

__all__ = ["display_width", "format_table", "report_header", "write_terminal_summary"]


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK) characters take two."""
    return sum(
        2 if unicodedata.east_asian_width(ch) in "WF" else 0 if unicodedata.combining(ch) else 1
        for ch in text
    )


def _pad(text: str, width: int, align: str) -> str:
    gap = max(0, width - display_width(text))
    return " " * gap + text if align == ">" else text + " " * gap


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]], aligns: str) -> list[str]:
    """Lines of a table whose column widths fit the data (CJK-aware)."""
    widths = [display_width(h) for h in headers]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], display_width(cell))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(_pad(cell, widths[i], aligns[i]) for i, cell in enumerate(cells)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def report_header(session: ZImageSession) -> list[str]:
    settings = session.settings
    if not settings.hosts:
        return []  # unrelated runs stay quiet; zimage items say why they skip
    if settings.simulated:
        lines = [
            "zimage: host simulated (SIMULATED: an in-process fake ComfyUI renders the images)"
        ]
    else:
        lines = [f"zimage: host {host}" for host in session.probe_hosts()]
    weights = (
        "RANDOM WEIGHTS — NOT A QUALITY MEASUREMENT" if settings.random_weights else "pretrained"
    )
    lines.append(
        f"zimage: CLIP {settings.clip_model}/{settings.clip_pretrained}, LPIPS {settings.lpips_net}, "
        f"device {settings.device}, {settings.precision}, weights {weights}"
    )
    lines.append(f"zimage: report dir {session.report_dir.root}")
    if settings.header_names:
        lines.append(f"zimage: extra headers {', '.join(settings.header_names)} (values hidden)")
    return lines


def write_terminal_summary(tr: Any, session: ZImageSession) -> None:
    if session.is_worker:
        return
    if not session.settings.hosts:
        if session.any_zimage_items:
            tr.write_sep("=", "zimage quality gate", yellow=True)
            tr.write_line(
                "zimage: no quality gate ran: no ComfyUI host given (--zimage-host)", yellow=True
            )
        return
    if session.summary is None:
        if session.any_zimage_items:
            tr.write_sep("=", "zimage quality gate", yellow=True)
            tr.write_line("zimage: no case finished, so no gate was computed", yellow=True)
        return
    _write_summary(tr, session.summary, session)


_VERDICT_WORD = {
    "pass": "PASS",
    "fail": "FAIL",
    "inconclusive": "INCONCLUSIVE",
    "insufficient data": "NO DATA",
    "no data": "NO DATA",
    "reference": "reference",
}


def _num(value: Any, digits: int = 4, sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _pm(desc: dict[str, Any] | None, digits: int) -> str:
    if not desc or desc.get("mean") is None:
        return "—"
    std = desc.get("std")
    return (
        f"{desc['mean']:.{digits}f} ± {std:.{digits}f}"
        if std is not None
        else f"{desc['mean']:.{digits}f}"
    )


def _speed(speed: dict[str, Any]) -> str:
    seconds = speed.get("median_seconds")
    if seconds is None:
        return "—"
    factor = speed.get("speedup")
    return f"{seconds:.2f} s" + (f"  {factor:.2f}×" if factor is not None else "")


def _color(verdict: str) -> dict[str, bool]:
    return {"pass": {"green": True}, "fail": {"red": True, "bold": True}}.get(
        verdict,
        {"yellow": True} if verdict in ("inconclusive", "insufficient data", "no data") else {},
    )


def headline_rows(suite: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    """The study's headline table, with the gate's columns added; also each row's verdict."""
    ref_label = suite["reference"]["label"]
    headers = [
        "config",
        "n",
        f"LPIPS vs {ref_label}",
        "CLIPScore",
        "Δ mean",
        "lower bound",
        "p (H0: Δ ≤ −δ)",
        "power",
        "min drop",
        "verdict",
        "speed (median, ×)",
    ]
    rows, verdicts = [], []
    for config in suite["configs"]:
        gate = config.get("gate") or {}
        verdict = config["verdict"]
        word = _VERDICT_WORD.get(verdict, verdict)
        two_axis = config.get("two_axis")
        if two_axis and verdict != "reference" and two_axis.lower() != word.lower():
            word = f"{word}: {two_axis}"
        rows.append(
            [
                config["label"],
                str(config["n_scored"]),
                "ref" if config["role"] == "reference" else _pm(config.get("lpips"), 3),
                _pm(config.get("clipscore"), 4),
                _num(gate.get("mean_diff"), sign=True),
                _num(gate.get("lower_bound"), sign=True),
                _num(gate.get("p_value"), 4),
                _num(gate.get("power"), 2),
                _num(gate.get("min_detectable_drop"), 4),
                word,
                _speed(config["speed"]),
            ]
        )
        verdicts.append(verdict)
    return headers, rows, verdicts


def prompt_rows(suite: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The study's per-prompt table: mean CLIPScore per cell, Δ vs the reference, flags."""
    configs = suite["configs"]
    ref_key = suite["reference"]["key"]
    headers = ["prompt", *(c["label"] for c in configs)]
    rows = []
    for prompt in suite["prompts"]:
        row = [prompt["key"]]
        for config in configs:
            cell = prompt["cells"].get(config["key"])
            if cell is None:
                row.append("—")
                continue
            text = f"{cell['clipscore_mean']:.4f}"
            if config["key"] != ref_key and cell.get("delta") is not None:
                text += f" ({cell['delta']:+.4f})"
            if cell.get("flagged"):
                text += " *"
            if cell.get("expected_fail"):
                text += " xf"
            row.append(text)
        rows.append(row)
    return headers, rows


def _write_summary(tr: Any, summary: dict[str, Any], session: ZImageSession) -> None:
    verbosity = tr.config.get_verbosity()
    tr.write_sep("=", "zimage quality gate")
    for line in summary.get("banners", []):
        tr.write_line(line, red=True, bold=True)
    for suite in summary["suites"]:
        if not any(config["n_scored"] for config in suite["configs"]):
            tr.write_line(f"suite {suite['name']}: no case was scored", yellow=True)
            continue
        params = suite["parameters"]
        margin, alpha = params["margin"]["value"], params["alpha"]["value"]
        if verbosity < 0:
            for config in suite["configs"]:
                if config["role"] == "reference":
                    continue
                gate = config.get("gate") or {}
                tr.write_line(
                    f"zimage {suite['name']}: {config['label']} {_VERDICT_WORD.get(config['verdict'], config['verdict'])}"
                    f" Δ={_num(gate.get('mean_diff'), sign=True)} lower={_num(gate.get('lower_bound'), sign=True)}"
                    f" (δ={margin:g}) n={gate.get('n_prompts', 0)} prompts"
                    f" LPIPS={_pm(config.get('lpips'), 3)} speed={_speed(config['speed'])}",
                    **_color(config["verdict"]),
                )
            continue
        n_prompts = max((c["n_prompts"] for c in suite["configs"]), default=0)
        n_seeds = max((c["n_seeds"] for c in suite["configs"]), default=0)
        tr.write_line(
            f"suite {suite['name']}: reference {suite['reference']['label']}, {n_prompts} prompts × "
            f"{n_seeds} seeds; per-case tolerance {params['tolerance']['value']:g}, margin δ = {margin:g}, "
            f"α = {alpha:g} (one-sided)"
        )
        tr.write_line("")
        headers, rows, verdicts = headline_rows(suite)
        lines = format_table(headers, rows, "<>>>>>>>><<")
        tr.write_line(lines[0], bold=True)
        tr.write_line(lines[1])
        for line, verdict in zip(lines[2:], verdicts, strict=True):
            tr.write_line(line, **_color(verdict))
        tr.write_line("")
        headers, rows = prompt_rows(suite)
        tr.write_line(
            f"Per-prompt mean CLIPScore (Δ vs {suite['reference']['label']}; * = drop flagged, "
            "Holm-adjusted; xf = expected to fail):"
        )
        for line in format_table(headers, rows, "<" + ">" * (len(headers) - 1)):
            tr.write_line(line)
        if verbosity >= 1:
            _write_seed_rows(tr, session, suite)
        _write_power(tr, suite)
        _write_notes(tr, suite)
        if verbosity >= 0:
            _write_legend(tr, suite)
    exit_info = summary["exit"]
    if not exit_info.get("gate_ran", True):
        tr.write_line(
            "zimage gate: NO VERDICT — no candidate case was scored against its reference "
            "(see the errors above, or select candidate configs)",
            yellow=True,
            bold=True,
        )
    elif not exit_info.get("gate_applied", True):
        would = "PASSED" if exit_info["gate_passed"] else "FAILED"
        tr.write_line(
            f"zimage gate: NOT APPLIED (random weights; with these numbers it would have {would}) "
            "— the exit status reflects the per-case tests only",
            yellow=True,
            bold=True,
        )
    elif exit_info["gate_passed"]:
        tr.write_line("zimage gate: PASSED", green=True, bold=True)
    else:
        tr.write_line(f"zimage gate: FAILED — {exit_info['reason']}", red=True, bold=True)
    tr.write_line(
        f"zimage: report {session.report_dir.html_path}  (results.jsonl, summary.json beside it)"
    )


def _write_seed_rows(tr: Any, session: ZImageSession, suite: dict[str, Any]) -> None:
    records = [
        r for r in session.records.values() if r.suite == suite["name"] and r.clipscore is not None
    ]
    configs = [c["key"] for c in suite["configs"]]
    labels = [c["label"] for c in suite["configs"]]
    cells: dict[tuple[str, int], dict[str, str]] = {}
    for record in records:
        text = f"{record.clipscore:.4f}"
        if record.lpips is not None:
            text += f" / {record.lpips:.3f}"
        cells.setdefault((record.prompt, record.seed), {})[record.config] = text
    order = {p["key"]: i for i, p in enumerate(suite["prompts"])}
    rows = [
        [prompt, str(seed), *(cells[(prompt, seed)].get(c, "—") for c in configs)]
        for prompt, seed in sorted(cells, key=lambda k: (order.get(k[0], 0), k[1]))
    ]
    tr.write_line("")
    tr.write_line("Per seed: CLIPScore / LPIPS vs reference")
    for line in format_table(["prompt", "seed", *labels], rows, "<>" + ">" * len(labels)):
        tr.write_line(line)


def power_rows(suite: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Per candidate config: what this run could detect, and the size that would detect δ."""
    margin = suite["parameters"]["margin"]["value"]
    headers = [
        "config",
        "prompts × seeds",
        "power at δ",
        "smallest detectable drop",
        f"to detect δ = {margin:g}",
    ]
    rows = []
    for config in suite["configs"]:
        gate = config.get("gate")
        if not gate:
            continue
        low, high = gate.get("seeds_per_prompt") or (0, 0)
        seeds = str(low) if low == high else f"{low}–{high}"
        needed = []
        if gate.get("prompts_needed"):
            needed.append(f"{gate['prompts_needed']} prompts")
        if gate.get("seeds_needed"):
            needed.append(f"{gate['seeds_needed']} seeds per prompt")
        rows.append(
            [
                config["label"],
                f"{gate['n_prompts']} × {seeds}",
                _num(gate.get("power"), 2),
                _num(gate.get("min_detectable_drop"), 4),
                " or ".join(needed) or "—",
            ]
        )
    return headers, rows


def _write_power(tr: Any, suite: dict[str, Any]) -> None:
    headers, rows = power_rows(suite)
    if not rows:
        return
    tr.write_line("")
    tr.write_line("Power (80% target; a pass below it is INCONCLUSIVE):")
    for line in format_table(headers, rows, "<>>><"):
        tr.write_line(line)


def _write_notes(tr: Any, suite: dict[str, Any]) -> None:
    notes = []
    for config in suite["configs"]:
        gate = config.get("gate") or {}
        for note in gate.get("notes") or []:
            notes.append(f"{config['label']}: {note}")
        if config.get("expected_fail_prompts"):
            notes.append(
                f"{config['label']}: left out of the gate as expected to fail: {', '.join(config['expected_fail_prompts'])}"
            )
    if notes:
        tr.write_line("")
        for note in notes:
            tr.write_line(f"note: {note}", yellow=True)


def _write_legend(tr: Any, suite: dict[str, Any]) -> None:
    params = suite["parameters"]
    margin, alpha = params["margin"]["value"], params["alpha"]["value"]
    ref = suite["reference"]["label"]
    level = f"{(1 - alpha) * 100:g}%"
    tr.write_line("")
    tr.write_line("Legend:")
    for line in (
        "  CLIPScore: raw cosine of open_clip image and prompt embeddings (the study's scale, ~0.33); mean ± std over cases.",
        f"  Δ mean: mean over prompts of (candidate − {ref}) CLIPScore, seeds averaged within a prompt (the prompt is the unit).",
        f"  lower bound: one-sided {level} lower confidence bound of Δ (paired t-test, df = prompts − 1); PASS needs it > −δ = {-margin:g}.",
        "  p: one-sided p-value of H0 Δ ≤ −δ. A Wilcoxon signed-rank test and a prompt-cluster bootstrap bound are in summary.json;",
        "     a disagreement between them is printed as a note.",
        "  power: chance to PASS a config with no true drop; min drop: smallest margin this run clears with 80% power.",
        "     A pass without 80% power is INCONCLUSIVE, not 'no regression'.",
        f"  Per-prompt flags: one-sided paired t across seeds, {suite['per_prompt_correction']}; descriptive only.",
        f"  Two axes: LPIPS < {suite['lpips_close']:g} = close to {ref}, else different; CLIPScore gate PASS = not worse.",
        f"  speed: median server seconds per image (model loads excluded by the median), × = speedup vs {ref}.",
    ):
        tr.write_line(line)
