"""Further gated metrics ([gate.metrics.<name>]): parsing, Bonferroni, each metric's decision."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pytest_zimage_quality import stats
from pytest_zimage_quality.artifacts import ReportDir
from pytest_zimage_quality.errors import SuiteError
from pytest_zimage_quality.metric_gates import (
    EXPECTED_TEXT,
    MetricGateSpec,
    bonferroni_alpha,
    combine_decisions,
)
from pytest_zimage_quality.metrics import REFERENCE_BASED, REFERENCE_FREE, MetricInfo
from pytest_zimage_quality.planning import plan_suites
from pytest_zimage_quality.report.html import write_html_report
from pytest_zimage_quality.report.markdown import render_markdown
from pytest_zimage_quality.report.terminal import write_terminal_summary
from pytest_zimage_quality.settings import HostSpec, Settings
from pytest_zimage_quality.suite import Suite, load_suite
from pytest_zimage_quality.summary import RunSummary, build_summary
from tests.helpers import more_prompts, write_small_suite
from tests.helpers.metric_records import CLIP, GATED_PROMPTS, TEXT, gated_records
from tests.helpers.summary_records import ENVIRONMENT, SCHEMA
from tests.helpers.terminal import Terminal

PSNR = MetricInfo("psnr", "PSNR dB", REFERENCE_BASED, True)
PROMPTS = GATED_PROMPTS


def _suite(tmp_path: Path, gate: str, *, suite_extra: str = "") -> Suite:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return load_suite(
        write_small_suite(tmp_path, suite_extra=suite_extra, extra=more_prompts(3) + gate)
    )


# -- the suite file ----------------------------------------------------------------------------


def test_a_gate_metrics_table_is_read_with_its_margin_band_and_prompts(tmp_path: Path) -> None:
    suite = _suite(
        tmp_path,
        """
        [gate.metrics.text_accuracy]
        margin = 0.05
        band = 0.3
        prompts = "expected-text"

        [gate.metrics.ssim_free]
        margin = 0.1
        prompts = ["cat", "dog"]
        """,
        suite_extra="text_from_quotes = true",
    )
    text, other = suite.metric_gates
    assert text == MetricGateSpec("text_accuracy", 0.05, 0.3, EXPECTED_TEXT)
    assert other == MetricGateSpec("ssim_free", 0.1, None, ("cat", "dog"))
    # expected-text selects the prompts that declare their text (quoted here)
    assert [p.key for p in suite.prompts if text.selects(p)] == ["sign", "poster"]
    assert [p.key for p in suite.prompts if other.selects(p)] == ["cat", "dog"]


@pytest.mark.parametrize(
    ("gate", "key", "fix"),
    [
        ("[gate.metrics.text_accuracy]\nmargn = 0.05\n", "gate.metrics.text_accuracy.margn",
         "known keys here: band, band_ceiling, band_sd, margin, prompts"),
        ("[gate.metrics.text_accuracy]\nband = 0.1\n", "gate.metrics.text_accuracy",
         "add margin = "),
        ("[gate.metrics.text_accuracy]\nmargin = 0\n", "gate.metrics.text_accuracy.margin",
         "write e.g. 0.05"),
        ("[gate.metrics.text_accuracy]\nmargin = 0.05\nband = -1\n",
         "gate.metrics.text_accuracy.band", "write e.g. 0.05"),
        ("[gate.metrics.text_accuracy]\nmargin = 0.05\nprompts = 'text'\n",
         "gate.metrics.text_accuracy.prompts", "prompts = 'expected-text'"),
        ("[gate.metrics.text_accuracy]\nmargin = 0.05\nprompts = ['nope']\n",
         "gate.metrics.text_accuracy.prompts", "the suite's prompts: cat, ink"),
        ("[gate.metrics.Text]\nmargin = 0.05\n", "gate.metrics.Text", "lower-case"),
        ("[gate.metrics.clipscore]\nmargin = 0.05\n", "gate.metrics.clipscore",
         "remove this table"),
        ("[gate.metrics.text_accuracy]\nmargin = 0.05\nband = 'scaled'\n",
         "gate.metrics.text_accuracy.band", "add band_sd = "),
        ("[gate.metrics.text_accuracy]\nmargin = 0.05\nband = 0.2\nband_sd = 0.1\n",
         "gate.metrics.text_accuracy.band_sd", 'write band = "scaled" with band_sd'),
        ("[gate.metrics.text_accuracy]\nmargin = 0.05\nband = 'wide'\n",
         "gate.metrics.text_accuracy.band", 'or band = "scaled"'),
        ("[gate.metrics.text_accuracy]\nmargin = 0.05\nband = 'scaled'\nband_sd = 0\n",
         "gate.metrics.text_accuracy.band_sd", "write e.g. 0.05"),
        ("[gate]\nmetric = 1\n", "gate.metric", "known keys here: metrics"),
        ("[gate.metrics]\ntext_accuracy = 0.05\n", "gate.metrics.text_accuracy",
         "[gate.metrics.<name>]"),
    ],
)  # fmt: skip
def test_a_bad_gate_metrics_table_names_the_key_and_the_fix(
    tmp_path: Path, gate: str, key: str, fix: str
) -> None:
    with pytest.raises(SuiteError) as caught:
        _suite(tmp_path, "\n" + gate)
    message = str(caught.value)
    assert key in message
    assert fix in message


# -- the multiplicity rule ---------------------------------------------------------------------


def test_bonferroni_divides_alpha_by_the_number_of_gated_metrics() -> None:
    assert bonferroni_alpha(0.05, 1) == 0.05
    assert bonferroni_alpha(0.05, 2) == 0.025
    with pytest.raises(ValueError, match="gated metrics"):
        bonferroni_alpha(0.05, 0)


@pytest.mark.parametrize(
    ("decisions", "combined"),
    [
        (["non-inferior", "non-inferior"], "non-inferior"),
        (["non-inferior", "inferior"], "inferior"),
        (["inconclusive", "inferior"], "inferior"),
        (["non-inferior", "inconclusive"], "inconclusive"),
        (["insufficient data", "inconclusive"], "insufficient data"),
        (["non-inferior", "incomplete"], "incomplete"),
    ],
)
def test_a_config_is_non_inferior_only_if_every_gated_metric_is(
    decisions: list[str], combined: str
) -> None:
    assert combine_decisions(decisions) == combined


def test_the_plan_tests_each_gated_metric_at_alpha_over_k(tmp_path: Path) -> None:
    one = _suite(tmp_path / "one", "")
    two = _suite(tmp_path / "two", "\n[gate.metrics.text_accuracy]\nmargin = 0.05\n")
    settings = Settings(hosts=(HostSpec("http://gpu:8188"),))
    for suite, alpha in ((one, 0.05), (two, 0.025)):
        plan = plan_suites([(suite, case) for case in suite.cases()], settings)[suite.name]
        assert plan.alpha == pytest.approx(alpha)


# -- the summary ------------------------------------------------------------------------------


def _summary(
    tmp_path: Path, gate: str, *, text_drop: float, metrics: tuple[MetricInfo, ...] = (CLIP, TEXT)
) -> RunSummary:
    suite = _suite(tmp_path, gate, suite_extra="text_from_quotes = true")
    summary = build_summary(
        gated_records(suite.name, text_drop=text_drop),
        suites=[suite],
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),), configs=("bf16", "fp8")),
        environment=ENVIRONMENT,
        run_id="run-1",
        metrics=metrics,
    )
    jsonschema.validate(summary.to_dict(), SCHEMA)
    return summary


GATED = "\n[gate.metrics.text_accuracy]\nmargin = 0.05\nband = 0.2\n"


def test_a_further_gated_metric_that_drops_makes_the_config_inferior(tmp_path: Path) -> None:
    summary = _summary(tmp_path, GATED, text_drop=0.3)
    config = summary.suites[0].configs[1]
    gates = config.metric_gates
    assert list(gates) == ["clipscore", "text_accuracy"]
    assert gates["clipscore"].decision == stats.NON_INFERIOR
    assert gates["text_accuracy"].decision == stats.INFERIOR
    assert {g.alpha for g in gates.values()} == {0.025}
    assert {g.k for g in gates.values()} == {2}
    assert config.decision == stats.INFERIOR
    assert config.verdict == stats.FAIL
    assert not summary.exit.gate_passed
    assert "FP8" in summary.exit.failed_configs
    assert any("gated metric Text acc.: INFERIOR" in note for note in config.notes)
    # every FP8 case dropped 0.3 ± 0.0015 > the band 0.2
    assert len(gates["text_accuracy"].outside_band) == 18
    data = summary.to_dict()["suites"][0]["configs"][1]["metric_gates"]["text_accuracy"]
    assert data["decision"] == "inferior"
    assert data["gate"]["alpha"] == 0.025


def test_every_gated_metric_non_inferior_passes_each_at_alpha_over_k(tmp_path: Path) -> None:
    summary = _summary(tmp_path, GATED, text_drop=0.0)
    config = summary.suites[0].configs[1]
    assert config.decision == stats.NON_INFERIOR
    assert summary.exit.gate_passed
    gate = config.metric_gates["text_accuracy"].gate
    assert gate is not None
    # its bound is the plain gate's at alpha / 2
    ref = {p: [0.9 - 0.01 * s for s in (1, 2, 3)] for p in PROMPTS}
    cand = {
        p: [0.9 - 0.01 * s + ((i * 3 + s) % 5 - 2) / 2 * 0.001 for s in (1, 2, 3)]
        for i, p in enumerate(PROMPTS)
    }
    alone = stats.noninferiority_gate(ref, cand, margin=0.05, alpha=0.025)
    assert gate.lower_bound == pytest.approx(alone.lower_bound)
    # the suite's parameters still show the family's alpha
    assert summary.suites[0].alpha == 0.05
    assert config.metric_gates["text_accuracy"].outside_band == ()


def test_the_prompt_filter_limits_a_gated_metric_to_its_prompts(tmp_path: Path) -> None:
    summary = _summary(
        tmp_path,
        "\n[gate.metrics.text_accuracy]\nmargin = 0.05\nprompts = 'expected-text'\n",
        text_drop=0.0,
    )
    entry = summary.suites[0].configs[1].metric_gates["text_accuracy"]
    assert entry.planned_prompts == 2  # sign and poster declare text
    assert entry.gate is not None
    assert set(entry.gate.prompts) == {"sign", "poster"}
    assert entry.decision == stats.INSUFFICIENT  # two prompts cannot decide at alpha 0.025
    assert summary.suites[0].configs[1].decision == stats.INSUFFICIENT


def test_a_gated_metric_the_run_did_not_measure_is_incomplete_and_named(tmp_path: Path) -> None:
    gate = "\n[gate.metrics.pickscore]\nmargin = 0.05\n\n[gate.metrics.psnr]\nmargin = 1\n"
    summary = _summary(tmp_path, gate, text_drop=0.0, metrics=(CLIP, TEXT, PSNR))
    config = summary.suites[0].configs[1]
    assert config.metric_gates["pickscore"].decision == stats.INCOMPLETE
    assert config.metric_gates["psnr"].decision == stats.INCOMPLETE
    assert config.metric_gates["clipscore"].k == 3
    assert config.decision == stats.INCOMPLETE
    assert not summary.exit.gate_passed
    assert "gated metric 'pickscore' gave no gate in this run" in summary.exit.reason
    assert "gated metric 'psnr' gave no gate" in summary.exit.reason


def test_without_further_gated_metrics_nothing_changes(tmp_path: Path) -> None:
    summary = _summary(tmp_path, "", text_drop=0.3)
    config = summary.suites[0].configs[1]
    assert config.metric_gates == {}
    assert config.decision == stats.NON_INFERIOR  # CLIPScore alone
    assert config.gate is not None
    assert config.gate.alpha == 0.05


# -- the reports ------------------------------------------------------------------------------


def test_every_output_shows_each_gated_metrics_decision(tmp_path: Path) -> None:
    summary = _summary(tmp_path / "suite", GATED, text_drop=0.3)
    records = gated_records(summary.suites[0].name, text_drop=0.3)
    terminal = Terminal()
    write_terminal_summary(
        terminal,
        summary,
        verbosity=0,
        records=records,
        html_path=ReportDir(tmp_path / "report", "run-1").html_path,
        has_host=True,
        any_zimage_items=True,
    )
    text = "\n".join(terminal.lines)
    assert "Gated metrics (each at α/k = 0.05/2, Bonferroni" in text
    rows = [line for line in terminal.lines if line.startswith("FP8 ")]
    assert any("Text acc." in r and "INFERIOR" in r and "> 0.2" in r for r in rows), rows
    assert any("CLIPScore" in r and "NON-INFERIOR" in r for r in rows), rows

    markdown = render_markdown(summary, records=records)
    assert "Gated metrics: each at α/k (Bonferroni)" in markdown
    assert "| FP8 | Text acc. | INFERIOR |" in markdown

    report = ReportDir(tmp_path / "report", "run-1")
    page = write_html_report(report, summary, records).read_text(encoding="utf-8")
    assert "Gated metrics: each config's decision per metric" in page
    assert page.count('class="metric-gate-row"') == 2

    # a suite with one gated metric shows no such table
    plain = _summary(tmp_path / "plain", "", text_drop=0.3)
    assert "Gated metrics" not in render_markdown(plain)


# -- checked before generation ----------------------------------------------------------------


def test_a_gate_metric_name_is_checked_against_the_runs_metrics_before_generation(
    tmp_path: Path,
) -> None:
    from pytest_zimage_quality.metric_gates import gate_metric_usage_problem
    from pytest_zimage_quality.scorers._builtin import builtin_metric_kinds

    with_text = _suite(tmp_path / "t", "", suite_extra="text_from_quotes = true")
    without = _suite(tmp_path / "n", "")
    kinds = builtin_metric_kinds([with_text])
    assert kinds["clipscore"] == REFERENCE_FREE
    assert kinds["lpips"] == REFERENCE_BASED
    assert kinds["text_accuracy"] == REFERENCE_FREE  # the test extra installs OCR
    assert "text_accuracy" not in builtin_metric_kinds([without])  # no prompt asks for text

    def problem(name: str, suite: Suite, *, others: bool = False) -> str | None:
        return gate_metric_usage_problem(
            name,
            builtin_metric_kinds([suite]),
            others_registered=others,
            what="--zimage-gate-metric",
        )

    assert problem("clipscore", without) is None
    assert problem("text_accuracy", with_text) is None
    typo = problem("clipscor", without)
    assert typo is not None
    assert typo.startswith("--zimage-gate-metric 'clipscor' is not a metric of this run")
    assert "is not a metric of this run; the metrics it can name here: clipscore (" in typo
    text = problem("text_accuracy", without)
    assert text is not None
    assert "pytest-zimage-quality[ocr]" in text
    lpips = problem("lpips", without, others=True)
    assert lpips is not None
    assert "compares with the reference image" in lpips
    assert "or a registered scorer's" in lpips
    # a conftest hook or an entry point may register it: checked once scorers are built
    assert problem("pickscore", without, others=True) is None


def test_a_case_outside_a_gated_metrics_band_fails_with_both_values(tmp_path: Path) -> None:
    from pytest_zimage_quality.metric_gates import band_failures

    suite = _suite(tmp_path, GATED, suite_extra="text_from_quotes = true")
    spec = suite.metric_gates[0]
    rows = {r.case_id: r for r in gated_records(suite.name, text_drop=0.3)}
    directions = {"text_accuracy": True}
    dropped = rows["sign-fp8-s1"]
    (message,) = band_failures(
        dropped, suite.prompt("sign"), [spec], higher_is_better=directions,
        labels={"text_accuracy": "Text acc."},
    )  # fmt: skip
    assert message.startswith("sign-fp8-s1: Text acc. 0.59 vs reference 0.89: the change -0.3 ")
    assert "below -band 0.2 ([gate.metrics.text_accuracy] band)" in message
    # within the band, a reference, or a lower-is-better metric that fell: no failure
    kept = gated_records(suite.name, text_drop=0.1)
    assert band_failures(kept[1], suite.prompt("cat"), [spec], higher_is_better=directions) == []
    assert band_failures(rows["sign-bf16-s1"], suite.prompt("sign"), [spec],
                         higher_is_better=directions) == []  # fmt: skip
    assert band_failures(dropped, suite.prompt("sign"), [spec],
                         higher_is_better={"text_accuracy": False}) == []  # fmt: skip


# -- a plugin run --------------------------------------------------------------------------------

MARK_SCORER = """
from pytest_zimage_quality import REFERENCE_FREE, ScoreBatch, ScorerSpec


def _mark(batch: ScoreBatch) -> list[float]:
    # 1.0 on the reference config's images, 0.5 on every other: a metric that drops by 0.5
    return [1.0 if "-bf16-" in key else 0.5 for key in batch.keys]


def pytest_zimage_register_scorers(config, settings, suites):
    return ScorerSpec(name="mark", label="Mark", kind=REFERENCE_FREE, higher_is_better=True,
                      score=_mark)
"""


@pytest.mark.slow
def test_a_further_gated_metric_fails_its_cases_and_its_configs_in_a_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(MARK_SCORER)
    write_small_suite(
        pytester.path,
        extra=more_prompts(3) + "\n[gate.metrics.mark]\nmargin = 0.05\nband = 0.1\n",
    )
    report = pytester.path / "report"
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--zimage-host=simulated", "--zimage-weights=random",
        "--zimage-seeds=1", f"--zimage-report-dir={report}",
        f"--zimage-cache-dir={pytester.path / 'cache'}", f"--junitxml={junit}",
    )  # fmt: skip
    # every candidate case dropped 0.5 > the band 0.1: a quality failure naming the band
    result.assert_outcomes(passed=6, failed=12)
    result.stdout.fnmatch_lines(["*Mark 0.5 vs reference 1: the change -0.5*below -band 0.1*"])
    result.stdout.fnmatch_lines(["Gated metrics (each at α/k = 0.05/2, Bonferroni*"])
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    for config in summary["suites"][0]["configs"][1:]:
        gates = config["metric_gates"]
        assert gates["mark"]["decision"] == "inferior"
        assert gates["mark"]["alpha"] == 0.025
        assert len(gates["mark"]["outside_band"]) == 6
        assert config["decision"] == "inferior"
    xml = junit.read_text(encoding="utf-8")
    assert '<property name="zimage_metric_gate_FP8_mark" value="INFERIOR"' in xml
    assert '<property name="zimage_metric_gate_NVFP4_clipscore"' in xml


TWO_SCORERS = """
from pytest_zimage_quality import REFERENCE_FREE, ScoreBatch, ScorerSpec

# per-prompt drops of mean 0 and spread 0.025: undecided at margin 0.01 on 6 or 9 prompts
OFFSET = {"cat": -0.03, "ink": 0.03, "sign": 0.0, "dog": -0.03, "clock": 0.03, "poster": 0.0,
          "robot": -0.03, "city": 0.03, "tea": 0.0}


def _same(batch: ScoreBatch) -> list[float]:
    return [1.0 for _ in batch.keys]


def _wobble(batch: ScoreBatch) -> list[float]:
    cases = [key.rsplit("/", 1)[-1] for key in batch.keys]
    return [1.0 if "-bf16-" in c else 1.0 + OFFSET[c.split("-")[0]] for c in cases]


def pytest_zimage_register_scorers(config, settings, suites):
    return [
        ScorerSpec(name="same", label="Same", kind=REFERENCE_FREE, higher_is_better=True,
                   score=_same),
        ScorerSpec(name="wobble", label="Wobble", kind=REFERENCE_FREE, higher_is_better=True,
                   score=_wobble),
    ]
"""


@pytest.mark.slow
def test_the_stage_hold_runs_a_config_on_until_every_gated_metric_is_decided(
    pytester: pytest.Pytester,
) -> None:
    """The gate metric ("same", no change) decides every candidate at stage 1; the further
    gated metric ("wobble") is undecided there, so stage 2 is generated and decides it."""
    pytester.makeconftest(TWO_SCORERS)
    write_small_suite(
        pytester.path,
        suite_extra='gate_metric = "same"',
        extra=more_prompts(3)
        + more_prompts(3, start=3, stage=2)
        + "\n[gate.metrics.wobble]\nmargin = 0.01\n",
    )
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--zimage-host=simulated", "--zimage-weights=random",
        "--zimage-seeds=1", f"--zimage-report-dir={report}",
        f"--zimage-cache-dir={pytester.path / 'cache'}",
    )  # fmt: skip
    result.assert_outcomes(passed=27)  # nothing held back: stage 2 ran for every config
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    for config in summary["suites"][0]["configs"][1:]:
        gates = config["metric_gates"]
        assert gates["same"]["decision"] == "non-inferior"
        assert gates["wobble"]["decision"] == "inconclusive"  # its last look, not INCOMPLETE
        assert config["stages"]["decided_stage"] == 1  # the gate metric's own look


@pytest.mark.slow
def test_a_scaled_band_is_sized_by_the_plan_and_checked_in_a_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(MARK_SCORER)
    write_small_suite(
        pytester.path,
        extra=more_prompts(3)
        + "\n[gate.metrics.mark]\nmargin = 0.05\nband = 'scaled'\nband_sd = 0.1\n",
    )
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--zimage-host=simulated", "--zimage-weights=random",
        "--zimage-seeds=1", f"--zimage-report-dir={report}",
        f"--zimage-cache-dir={pytester.path / 'cache'}",
    )  # fmt: skip
    # 12 candidate cases, the 5% shared with CLIPScore's band: 0.1 x z(1 - 0.025/12) = 0.2865
    result.assert_outcomes(passed=6, failed=12)
    result.stdout.fnmatch_lines(
        ["*Mark 0.5 vs reference 1: the change -0.5*below -band 0.2865 (scaled band 0.2865*"]
    )
    summary = json.loads((report / "summary.json").read_text(encoding="utf-8"))
    assert summary["suites"][0]["plan"]["band"]["family_alpha"] == 0.025
    for config in summary["suites"][0]["configs"][1:]:
        assert config["metric_gates"]["mark"]["band"] == pytest.approx(0.2865, abs=1e-4)
        assert len(config["metric_gates"]["mark"]["outside_band"]) == 6


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "extra", "message"),
    [
        (["--zimage-gate-metric=lpips"], "",
         "--zimage-gate-metric 'lpips' compares with the reference image"),
        ([], "\n[gate.metrics.pickscore]\nmargin = 0.05\n",
         "suite small: ?gate.metrics.pickscore? 'pickscore' is not a metric of this run"),
    ],
)  # fmt: skip
def test_a_gate_metric_the_run_cannot_have_is_one_usage_error_before_generation(
    pytester: pytest.Pytester, args: list[str], extra: str, message: str
) -> None:
    write_small_suite(pytester.path, extra=extra)
    report = pytester.path / "report"
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--zimage-host=simulated", "--zimage-weights=random",
        f"--zimage-report-dir={report}", *args,
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])
    result.stdout.fnmatch_lines([f"zimage usage error: {message}*"])
    assert not (report / "results.jsonl").exists()  # nothing generated, nothing scored
    assert "PASSED" not in result.stdout.str()


@pytest.mark.slow
def test_without_a_host_a_bad_gate_metric_does_not_stop_other_tests(
    pytester: pytest.Pytester,
) -> None:
    write_small_suite(pytester.path)
    pytester.makepyfile(test_other="def test_other():\n    assert True\n")
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--zimage-gate-metric=lpips")
    assert result.ret == pytest.ExitCode.OK  # the suite's cases are skipped (no host)
    result.assert_outcomes(passed=1, skipped=27)


def test_a_staged_suite_reads_each_gated_metric_through_its_stages(tmp_path: Path) -> None:
    tmp_path.mkdir(parents=True, exist_ok=True)
    suite = load_suite(
        write_small_suite(
            tmp_path,
            suite_extra="text_from_quotes = true",
            extra=more_prompts(3, stage=2) + GATED,
        )
    )
    assert suite.stages == (1, 2)
    summary = build_summary(
        gated_records(suite.name, text_drop=0.3),
        suites=[suite],
        settings=Settings(hosts=(HostSpec("http://gpu:8188"),), configs=("bf16", "fp8")),
        environment=ENVIRONMENT,
        run_id="run-1",
        metrics=(CLIP, TEXT),
    )
    jsonschema.validate(summary.to_dict(), SCHEMA)
    config = summary.suites[0].configs[1]
    assert config.stages is not None  # the gate metric's sequential reading
    text = config.metric_gates["text_accuracy"]
    assert text.decision == stats.INFERIOR  # a 0.3 drop is decided through the looks
    assert text.alpha == 0.025
    assert config.decision == stats.INFERIOR


# -- the scaled band of a further gated metric --------------------------------------------------

SCALED_BAND = "\n[gate.metrics.text_accuracy]\nmargin = 0.05\nband = 'scaled'\nband_sd = 0.05\n"


def test_a_scaled_band_widens_with_its_cases_and_shares_the_false_alarm_budget(
    tmp_path: Path,
) -> None:
    from statistics import NormalDist

    suite = _suite(tmp_path, SCALED_BAND, suite_extra="text_from_quotes = true")
    (spec,) = suite.metric_gates
    assert (spec.band, spec.band_sd, spec.band_ceiling) == (None, 0.05, None)
    settings = Settings(hosts=(HostSpec("http://gpu:8188"),), configs=("bf16", "fp8"))
    plan = plan_suites([(suite, c) for c in suite.cases(configs=("bf16", "fp8"))], settings)[
        suite.name
    ]
    (text,) = plan.further
    assert text.band is not None
    # 18 candidate cases (6 prompts x 3 seeds); the run's 0.05 shared by its two scaled bands
    assert (text.band.n_cases, text.band.family_alpha) == (18, 0.025)
    assert text.band.width == pytest.approx(0.05 * NormalDist().inv_cdf(1 - 0.025 / 18))
    assert plan.band.family_alpha == 0.025  # CLIPScore's scaled band spends the other half
    assert any("per-case text_accuracy scaled band 0.1496" in line for line in plan.lines())
    # a fixed band stays what it says, and leaves CLIPScore's budget whole
    fixed = _suite(tmp_path / "fixed", GATED)
    plan = plan_suites([(fixed, c) for c in fixed.cases(configs=("bf16", "fp8"))], settings)[
        fixed.name
    ]
    assert plan.further[0].band is not None
    assert plan.further[0].band.width == 0.2
    assert plan.band.family_alpha == 0.05


def test_a_scaled_band_fails_only_the_cases_beyond_it(tmp_path: Path) -> None:
    from pytest_zimage_quality.metric_gates import band_failures

    suite = _suite(tmp_path, SCALED_BAND, suite_extra="text_from_quotes = true")
    (spec,) = suite.metric_gates
    settings = Settings(hosts=(HostSpec("http://gpu:8188"),), configs=("bf16", "fp8"))
    plans = plan_suites([(suite, c) for c in suite.cases(configs=("bf16", "fp8"))], settings)
    band = plans[suite.name].further[0].band
    assert band is not None
    bands = {"text_accuracy": band}  # width 0.1496
    directions = {"text_accuracy": True}
    small = {r.case_id: r for r in gated_records(suite.name, text_drop=0.1)}["sign-fp8-s1"]
    big = {r.case_id: r for r in gated_records(suite.name, text_drop=0.3)}["sign-fp8-s1"]
    prompt = suite.prompt("sign")
    assert band_failures(small, prompt, [spec], higher_is_better=directions, bands=bands) == []
    (message,) = band_failures(big, prompt, [spec], higher_is_better=directions, bands=bands)
    assert "below -band 0.1496 (scaled band 0.1496 (0.05 x z(1 - 0.025/18)" in message
    # without the plan's size a scaled band checks nothing (it is never a guessed number)
    assert band_failures(big, prompt, [spec], higher_is_better=directions) == []
    # the summary counts the cases beyond the planned width
    summary = build_summary(
        gated_records(suite.name, text_drop=0.1),
        suites=[suite],
        settings=settings,
        environment=ENVIRONMENT,
        run_id="run-1",
        metrics=(CLIP, TEXT),
        plans=plans,
    )
    entry = summary.suites[0].configs[1].metric_gates["text_accuracy"]
    assert entry.band == pytest.approx(band.width)
    assert entry.outside_band == ()
