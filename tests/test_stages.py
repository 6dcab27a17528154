"""Stages read alike whatever ran: the hold's run and an every-stage run (xdist) decide the same."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_zimage_quality import stats
from pytest_zimage_quality.hosts import parse_host
from pytest_zimage_quality.metrics import REFERENCE_FREE, MetricInfo
from pytest_zimage_quality.planning import plan_suites
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.report.text_tables import power_rows
from pytest_zimage_quality.settings import GateParameters, Settings
from pytest_zimage_quality.stages import CLIPSCORE, StageHold, analyse
from pytest_zimage_quality.suite import Suite, load_suite
from pytest_zimage_quality.summary import build_summary
from pytest_zimage_quality.summary.gate import candidate_gate
from tests.helpers import more_prompts, write_small_suite
from tests.helpers.html_reports import ENVIRONMENT
from tests.helpers.summary_records import paired_record


def _suite(tmp_path: Path, gate: str = "") -> Suite:
    # stage 1: 9 prompts (a look that can stop a clearly fine config), stage 2: 3 prompts
    path = write_small_suite(
        tmp_path, extra=more_prompts(6) + more_prompts(3, start=6, stage=2) + gate
    )
    return load_suite(path)


def _records(
    suite: Suite,
    stages: tuple[int, ...],
    *,
    other_drop: float = 0.0,
    sharp: Callable[[int], float] | None = None,
) -> list[CaseRecord]:
    """Records whose CLIPScore shows no drop; the metric "sharp" drops by ``other_drop``, or
    by ``sharp(i)`` on the i-th prompt."""
    rows = []
    for i, prompt in enumerate(p for p in suite.prompts if p.stage in stages):
        for seed in suite.seeds:
            ref = 0.30 + i / 100 + seed / 1000
            drop = sharp(i) if sharp is not None else other_drop
            for config in ("bf16", "fp8"):
                is_ref = config == "bf16"
                score = ref + (0 if is_ref else 0.0004 * (seed - 2))
                rows.append(
                    paired_record(
                        suite=suite.name,
                        prompt=prompt.key,
                        config=config,
                        seed=seed,
                        score=score,
                        ref=ref,
                        metrics={"sharp": score - (0 if is_ref else drop)},
                        reference_metrics={} if is_ref else {"sharp": ref},
                    )
                )
    return rows


def _settings() -> Settings:
    return Settings(hosts=(parse_host("gpu:8188"),), configs=("bf16", "fp8"))


def test_an_every_stage_run_decides_as_the_held_run_and_saves_nothing(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    cases = suite.cases(configs=("bf16", "fp8"))
    plan = plan_suites([(suite, c) for c in cases], _settings())[suite.name]
    held = [r for r in _records(suite, (1,)) if r.config == "fp8"]
    every = [r for r in _records(suite, (1, 2)) if r.config == "fp8"]
    a = analyse(plan, held, stages_run=1)
    b = analyse(plan, every, stages_run=2)
    assert a is not None
    assert b is not None
    assert (a.decision, a.decided_stage) == ("non-inferior", 1)
    assert (b.decision, b.decided_stage) == (a.decision, a.decided_stage)
    assert b.sequential.looks == a.sequential.looks
    assert a.generations_saved == 9  # stage 2's 3 prompts x 3 seeds were never generated
    assert b.generations_saved == 0  # under xdist every stage ran: nothing was saved


def test_the_hold_releases_stage_two_only_after_stage_one_left_a_config_undecided(
    tmp_path: Path,
) -> None:
    suite = _suite(tmp_path)
    cases = suite.cases(configs=("bf16", "fp8"))
    plans = plan_suites([(suite, c) for c in cases], _settings())
    hold = StageHold(plans, cases)
    assert len(hold.first()) == 2 * 9 * 3
    assert hold.held() == 2 * 3 * 3
    records = {(suite.name, r.case_id): r for r in _records(suite, (1,))}
    stage_two = [c for c in cases if c.prompt.stage == 2]
    fp8 = next(c for c in stage_two if c.config.key == "fp8")
    reason, release = hold.check(fp8, records)
    assert reason is not None
    assert "decided NON-INFERIOR at stage 1 of 2" in reason
    assert release == []
    ref = next(c for c in stage_two if c.is_reference)
    reason, _ = hold.check(ref, records)
    assert reason is not None
    assert "every candidate config" in reason


def test_the_hold_decides_on_the_suites_gate_metric(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    cases = suite.cases(configs=("bf16", "fp8"))
    plans = plan_suites([(suite, c) for c in cases], _settings())
    records = {(suite.name, r.case_id): r for r in _records(suite, (1,), other_drop=0.05)}
    fp8 = next(c for c in cases if c.prompt.stage == 2 and c.config.key == "fp8")
    sharp = MetricInfo("sharp", "Sharpness", REFERENCE_FREE, True)
    # CLIPScore shows no drop; the suite's gate metric drops by 0.05: INFERIOR at stage 1
    hold = StageHold(plans, cases, metric_for=lambda name: sharp)
    reason, _ = hold.check(fp8, records)
    assert reason is not None
    assert "decided INFERIOR at stage 1" in reason
    # a gate metric this run does not measure: no decision, so nothing is held back
    unmeasured = StageHold(plans, cases, metric_for=lambda name: None)
    reason, release = unmeasured.check(fp8, records)
    assert reason is None
    assert len(release) == 9  # fp8's stage-2 cases: 3 prompts x 3 seeds


def test_the_plan_names_each_looks_level_and_the_looks_that_cannot_stop(tmp_path: Path) -> None:
    path = write_small_suite(tmp_path, extra=more_prompts(6, stage=2))  # looks at 3, 9 prompts
    suite = load_suite(path)
    cases = suite.cases(configs=("bf16", "fp8"))
    plan = plan_suites([(suite, c) for c in cases], _settings())[suite.name]
    line = plan.design_line()
    assert line.startswith("zimage plan: sequential design (linear α-spending, calibrated;")
    assert "3 prompts: cannot stop a config" in line  # 2^-3 is above any share of 0.05
    assert "9 prompts: α 0.0" in line
    assert line in plan.lines()


def test_a_stop_at_a_look_too_small_to_decide_is_incomplete_not_a_crash(tmp_path: Path) -> None:
    """Stopped (SIGTERM) after stage 1 of looks at 3 and 9 prompts: look 1's level is out of
    reach (nominal α 0), so the summary shows bounds at the overall α and decides nothing."""
    path = write_small_suite(tmp_path, extra=more_prompts(6, stage=2))
    suite = load_suite(path)
    cases = suite.cases(configs=("bf16", "fp8"))
    plan = plan_suites([(suite, c) for c in cases], _settings())[suite.name]
    rows = [r for r in _records(suite, (1,)) if r.config == "fp8"]
    gate = GateParameters(tolerance=0.05, margin=0.01, alpha=0.05, clip_floor=0.0)
    for stopped in ("interrupted", ""):
        judged = candidate_gate(
            rows,
            gate,
            prompt_order=[p.key for p in suite.prompts],
            plan=plan,
            stopped_early=stopped,
        )
        assert judged.decision == "incomplete"
        assert judged.result is not None
        assert judged.result.alpha == 0.05
        assert any("too few prompts to reach its level" in n for n in judged.notes)


SHARP = MetricInfo("sharp", "Sharpness", REFERENCE_FREE, True)
SHARP_GATED = "\n[gate.metrics.sharp]\nmargin = 0.01\n"


def _undecided(i: int) -> float:
    """Drops of mean 0 and spread 0.03 over the prompts: CLIPScore clears at stage 1 of 2,
    "sharp" (margin 0.01) neither clears nor fails there."""
    return (-0.03, 0.03, 0.0)[i % 3]


def test_a_config_goes_on_until_every_gated_metric_is_decided(tmp_path: Path) -> None:
    suite = _suite(tmp_path, SHARP_GATED)
    cases = suite.cases(configs=("bf16", "fp8"))
    plans = plan_suites([(suite, c) for c in cases], _settings())
    assert [g.metric for g in plans[suite.name].further] == ["sharp"]
    records = {(suite.name, r.case_id): r for r in _records(suite, (1,), sharp=_undecided)}
    fp8 = next(c for c in cases if c.prompt.stage == 2 and c.config.key == "fp8")
    ref = next(c for c in cases if c.prompt.stage == 2 and c.is_reference)
    hold = StageHold(plans, cases, measured=lambda: [SHARP])
    # CLIPScore is NON-INFERIOR at stage 1, "sharp" undecided: stage 2 is generated
    stage_two = [c for c in cases if c.config.key == "fp8" and c.prompt.stage == 2]
    assert hold.check(fp8, records) == (None, stage_two)
    assert hold.check(ref, records)[0] is None
    # the summary reads the same: after both stages, each metric decided, none INCOMPLETE
    rows = _records(suite, (1, 2), sharp=_undecided)
    summary = build_summary(
        rows,
        suites=[suite],
        settings=_settings(),
        environment=ENVIRONMENT,
        run_id="run-1",
        metrics=(CLIPSCORE, SHARP),
    )
    gates = summary.suites[0].configs[1].metric_gates
    assert gates["clipscore"].decision == "non-inferior"
    assert gates["sharp"].decision == "inconclusive"  # the final look, not INCOMPLETE
    # a further metric this run does not measure never decides, so it holds nothing back
    unmeasured = StageHold(plans, cases, measured=list)
    reason, _ = unmeasured.check(fp8, records)
    assert reason is not None
    assert "every gated metric decided by stage 1 of 2" in reason
    assert "sharp gives no reading" in reason


def test_one_inferior_gated_metric_stops_the_config_inferior(tmp_path: Path) -> None:
    suite = _suite(tmp_path, SHARP_GATED)
    cases = suite.cases(configs=("bf16", "fp8"))
    plans = plan_suites([(suite, c) for c in cases], _settings())
    records = {(suite.name, r.case_id): r for r in _records(suite, (1,), other_drop=0.05)}
    fp8 = next(c for c in cases if c.prompt.stage == 2 and c.config.key == "fp8")
    reason, release = StageHold(plans, cases, measured=lambda: [SHARP]).check(fp8, records)
    assert reason is not None
    assert "decided INFERIOR at stage 1 of 2 (clipscore NON-INFERIOR, sharp INFERIOR)" in reason
    assert release == []


def test_a_staged_plan_prints_the_sequential_designs_power(tmp_path: Path) -> None:
    suite = _suite(tmp_path)  # looks at 9 and 12 prompts
    cases = suite.cases(configs=("bf16", "fp8"))
    plan = plan_suites([(suite, c) for c in cases], _settings())[suite.name]
    assert plan.power is not None
    assert plan.sequential_power is not None
    # the early look spends alpha the last one no longer has: a little below one look at all 12
    assert 0.5 < plan.sequential_power < plan.power.power
    head = plan.lines()[0]
    assert (
        f"planned power at δ = 0.01: {plan.sequential_power:.3f} (the sequential design's" in head
    )
    assert f"one look at all 12 prompts: {plan.power.power:.3f})" in head
    assert plan.to_dict()["sequential_power"] == plan.sequential_power
    # its minimum detectable drop is the design's too: above one look's, and the design clears
    # that margin with about 80% probability (its own power figure, on independent draws)
    assert plan.sequential_mdd is not None
    assert plan.power.min_detectable_drop is not None
    assert plan.sequential_mdd > plan.power.min_detectable_drop
    assert f"minimum detectable drop {plan.sequential_mdd:.4f} (the design's; one look: " in head
    assert plan.to_dict()["sequential_mdd"] == plan.sequential_mdd
    effect = plan.sequential_mdd / plan.prior.sd_prompt(plan.seeds)
    assert abs(stats.sequential_power(plan.looks, 0.05, round(effect, 9)) - 0.8) < 0.01
    # without stages: the one figure, as before
    (tmp_path / "flat").mkdir()
    flat = load_suite(write_small_suite(tmp_path / "flat", extra=more_prompts(6)))
    flat_plan = plan_suites([(flat, c) for c in flat.cases(configs=("bf16", "fp8"))], _settings())
    assert flat_plan[flat.name].sequential_power is None
    assert flat_plan[flat.name].sequential_mdd is None


def test_a_staged_suites_planned_power_is_the_sequential_designs(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    cases = suite.cases(configs=("bf16", "fp8"))
    plans = plan_suites([(suite, c) for c in cases], _settings())
    plan = plans[suite.name]
    assert plan.staged
    assert plan.sequential_power is not None
    summary = build_summary(
        _records(suite, (1,)),
        suites=[suite],
        settings=_settings(),
        environment=ENVIRONMENT,
        run_id="r",
        plans=plans,
    )
    (built,) = summary.suites
    fp8 = next(c for c in built.configs if c.key == "fp8")
    assert fp8.gate is not None
    assert built.planned_power(fp8) == plan.sequential_power
    _, rows = power_rows(built)
    assert rows[0][2] == f"{plan.sequential_power:.2f}"
    assert built.planned_mdd(fp8) == plan.sequential_mdd
    assert rows[0][3] == f"{plan.sequential_mdd:.4f}"
    reference = next(c for c in built.configs if c.is_reference)
    assert built.planned_power(reference) is None
