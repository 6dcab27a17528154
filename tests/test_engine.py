"""The engine on its own, against the fake ComfyUI and the scorer doubles, without pytest's layer.

It plans the reference cases that selected candidates need (and generates them first), hands
each test the outcome of its own case, serves cache hits without generating, makes the
report's thumbnails as images arrive, and turns a scorer that cannot be built into one error
for every case.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from pytest_zimage_quality.artifacts import ReportDir
from pytest_zimage_quality.cache import ImageCache
from pytest_zimage_quality.engine import Engine
from pytest_zimage_quality.errors import ScorerError, ZImageError
from pytest_zimage_quality.metrics import ScorerSpec
from pytest_zimage_quality.suite import Case, Suite, load_suite
from pytest_zimage_quality.thumbnails import thumbnail_path
from tests.helpers import write_small_suite
from tests.helpers.doubles import DryRunSettings, EdgeCLIP, MeanAbsLPIPS, double_specs


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return load_suite(write_small_suite(tmp_path_factory.mktemp("suite"), size=32))


StartEngine = Callable[..., Engine]


@pytest.fixture
def start_engine(tmp_path: Path, suite: Suite) -> Iterator[StartEngine]:
    """Start engines on fresh fake servers; every one is closed at the end of the test."""
    engines: list[Engine] = []

    def start(
        planned: Sequence[Case],
        *,
        cache: ImageCache | None = None,
        settings: DryRunSettings | None = None,
        build: Callable[[], list[ScorerSpec]] | None = lambda: double_specs(),
    ) -> Engine:
        """``build=None`` leaves providing the scorers to the test."""
        engine = Engine(
            settings or DryRunSettings(),
            report_dir=ReportDir(tmp_path / f"report-{len(engines)}", "run"),
            cache=cache,
        )
        engines.append(engine)
        engine.start([suite], planned)
        if build is not None:
            engine.provide_scorers(build)
        return engine

    yield start
    for engine in engines:
        engine.close(cancel=True)


def _submitted_prompt_ids(engine: Engine) -> list[str]:
    return [r.json["prompt_id"] for r in engine.fake.requests if r.route == "/prompt" and r.json]


def test_a_selected_candidate_brings_its_reference_and_the_reference_goes_first(
    start_engine: StartEngine, suite: Suite
) -> None:
    candidate = suite.make_case("cat", "fp8", 1)
    engine = start_engine([candidate])
    outcome = engine.outcome(candidate)

    reference = outcome.reference
    assert reference is not None
    assert reference.case == suite.make_case("cat", "bf16", 1)
    assert engine.fake.generations == 2  # the candidate and the reference it needs, nothing else
    assert _submitted_prompt_ids(engine) == [reference.job.prompt_id, outcome.job.prompt_id]
    expected = MeanAbsLPIPS().distance([outcome.png], [reference.png])[0]
    assert outcome.scores.lpips == pytest.approx(expected)
    assert reference.scores.lpips is None


def test_each_test_gets_the_outcome_of_its_own_case(
    start_engine: StartEngine, suite: Suite
) -> None:
    planned = [suite.make_case("sign", c.key, seed) for c in suite.configs for seed in (1, 2)]
    engine = start_engine(planned)

    for case in reversed(planned):  # tests may ask in any order
        outcome = engine.outcome(case)
        assert outcome.case == case
        assert outcome.image_path.read_bytes() == outcome.png
        assert outcome.generated.sha256 == hashlib.sha256(outcome.png).hexdigest()
        assert outcome.scores.clipscore == pytest.approx(
            EdgeCLIP().score([outcome.png], [case.prompt.text])[0]
        )
        if case.is_reference:
            assert outcome.reference is None
        else:
            assert outcome.reference is not None
            assert outcome.reference.case.seed == case.seed
        assert outcome.generated.png == b""  # the bytes live in the file, not per case in memory
    shas = {engine.outcome(case).generated.sha256 for case in planned}
    assert len(shas) == len(planned)
    assert engine.fake.generations == len(planned)
    # Thumbnails are made as images arrive (after scoring is handed the image, so they may
    # trail the outcome); every one is there once the runners have stopped.
    engine.close(cancel=False)
    assert all(thumbnail_path(engine.report_dir.thumbs_dir, sha).is_file() for sha in shas)


def test_a_case_outside_the_plan_is_generated_when_a_test_asks_for_it(
    start_engine: StartEngine, suite: Suite
) -> None:
    engine = start_engine([suite.make_case("cat", "bf16", 1)])
    late = suite.make_case("ink", "nvfp4", 3)
    outcome = engine.outcome(late)
    assert outcome.case == late
    assert outcome.reference is not None
    assert outcome.reference.case.config.key == "bf16"


def test_cache_hits_are_served_without_generating(
    start_engine: StartEngine, suite: Suite, tmp_path: Path
) -> None:
    planned = [suite.make_case("cat", "bf16", 2), suite.make_case("cat", "nvfp4", 2)]
    cache = ImageCache(tmp_path / "cache")
    first = start_engine(planned, cache=cache)
    made = {case.id: first.outcome(case).png for case in planned}
    first.close(cancel=False)

    second = start_engine(planned, cache=cache)
    for case in planned:
        outcome = second.outcome(case)
        assert outcome.generated.cached == "plugin"
        assert outcome.png == made[case.id]
    assert second.fake.generations == 0

    refreshed = start_engine(planned, cache=cache, settings=DryRunSettings(refresh=True))
    assert all(refreshed.outcome(case).generated.cached != "plugin" for case in planned)
    assert refreshed.fake.generations == len(planned)


def test_scorers_that_cannot_be_built_fail_every_case_with_one_clear_error(
    start_engine: StartEngine, suite: Suite
) -> None:
    def broken() -> list[ScorerSpec]:
        raise RuntimeError("CUDA out of memory")

    cases = [suite.make_case("cat", "fp8", 3), suite.make_case("cat", "bf16", 3)]
    engine = start_engine(cases, build=None)
    with pytest.raises(ScorerError, match=r"building the scorers failed.*CUDA out of memory"):
        engine.provide_scorers(broken)
    for case in cases:
        with pytest.raises(ScorerError, match="CUDA out of memory") as info:
            engine.outcome(case)
        assert "--zimage-device" in info.value.hint


def test_a_closed_engine_refuses_to_wait_and_unknown_suites_are_named(
    start_engine: StartEngine, suite: Suite
) -> None:
    engine = start_engine([])
    stranger = Case(
        suite="another-suite",
        prompt=suite.prompt("cat"),
        config=suite.config("fp8"),
        seed=1,
        reference="bf16",
    )
    with pytest.raises(ZImageError, match="'another-suite' is not part of this run"):
        engine.outcome(stranger)
    engine.close(cancel=True)
    with pytest.raises(ZImageError, match="the run is stopping"):
        engine.outcome(suite.make_case("cat", "bf16", 1))


class _ReferencesCannotBeStored(ReportDir):
    """A report dir whose disk is full for the reference config's images."""

    def store_image(self, prompt: str, config: str, seed: int, sha256: str, png: bytes) -> Path:
        if config == "bf16":
            raise OSError(28, "No space left on device")
        return super().store_image(prompt, config, seed, sha256, png)


def test_a_reference_that_cannot_be_stored_fails_its_candidates_at_once(
    suite: Suite, tmp_path: Path
) -> None:
    # The timeout (hence the reference deadline, 2 x 600 s) is far away: the candidate must
    # hear of its reference's failure, not wait for the deadline.
    engine = Engine(
        DryRunSettings(timeout=600.0),
        report_dir=_ReferencesCannotBeStored(tmp_path / "report", "run"),
        cache=None,
    )
    candidate = suite.make_case("ink", "fp8", 4)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            engine.outcome(candidate)
        except ZImageError as exc:
            errors.append(exc)

    try:
        engine.start([suite], [candidate])
        engine.provide_scorers(double_specs)
        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        waiter.join(timeout=60)
        assert not waiter.is_alive(), "the candidate still waits for a reference that failed"
    finally:
        engine.close(cancel=True)
    (error,) = errors
    assert "no reference image" in str(error)
    assert "No space left on device" in str(error)
