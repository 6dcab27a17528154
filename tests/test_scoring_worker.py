"""The scoring worker on its own: pairing, parking, failure propagation and batching.

Real PNGs go through the real decoder and blank check; the scorers are the deterministic
doubles of tests/helpers/doubles.py, so every expected number is computed here independently.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from pytest_zimage_quality.errors import ImageDecodeError, ScorerError, ZImageError
from pytest_zimage_quality.images import decode_png, encode_png, is_blank
from pytest_zimage_quality.scoring_worker import ScoringWorker
from pytest_zimage_quality.suite import Suite, load_suite
from tests.helpers import write_small_suite
from tests.helpers.doubles import EdgeCLIP, MeanAbsLPIPS, double_specs
from tests.helpers.scoring import WAIT, Recorder, make_case, make_image, submit


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Suite:
    return load_suite(write_small_suite(tmp_path_factory.mktemp("suite")))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def worker(recorder: Recorder) -> Iterator[ScoringWorker]:
    w = ScoringWorker(
        decode=lambda data, name: decode_png(data, label=name),
        is_blank=is_blank,
        on_scored=recorder.on_scored,
        on_failed=recorder.on_failed,
        batch_size=4,
        decode_threads=2,
    )
    w.start()
    yield w
    w.stop()


def _wait_until_scored(worker: ScoringWorker, count: int) -> None:
    """Wait until the worker has scored ``count`` images (a parked one makes no callback)."""
    deadline = time.monotonic() + WAIT
    while worker.scored < count:
        assert time.monotonic() < deadline, f"{worker.scored} of {count} scored"
        time.sleep(0.01)


def _lpips(a: torch.Tensor, b: torch.Tensor) -> float:
    return MeanAbsLPIPS().distance([a], [b])[0]


def _clip(image: torch.Tensor, text: str) -> float:
    return EdgeCLIP().score([image], [text])[0]


def test_a_candidate_is_paired_with_its_own_reference(
    worker: ScoringWorker, recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    worker.provide(double_specs(EdgeCLIP()))
    ref, cand = make_case(suite, "bf16"), make_case(suite, "fp8")
    other_ref = make_case(suite, "bf16", seed=2)
    ref_img, cand_img, other_img = make_image(0), make_image(40), make_image(200)
    submit(worker, tmp_path, ref, suite, encode_png(ref_img))
    submit(worker, tmp_path, other_ref, suite, encode_png(other_img))
    submit(worker, tmp_path, cand, suite, encode_png(cand_img))
    recorder.wait_for(ref.id, other_ref.id, cand.id)

    assert not recorder.failed
    assert recorder.scored[ref.id].lpips is None  # a reference has nothing to compare with
    assert recorder.scored[cand.id].lpips == pytest.approx(_lpips(cand_img, ref_img))
    assert recorder.scored[cand.id].lpips != pytest.approx(_lpips(cand_img, other_img))
    assert recorder.scored[cand.id].clipscore == pytest.approx(_clip(cand_img, cand.prompt.text))
    assert (recorder.scored[cand.id].width, recorder.scored[cand.id].height) == (16, 16)
    assert recorder.scored[cand.id].blank is False


def test_a_candidate_is_parked_until_its_reference_is_scored(
    worker: ScoringWorker, recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    worker.provide(double_specs(EdgeCLIP()))
    ref, cand = make_case(suite, "bf16"), make_case(suite, "nvfp4")
    ref_img, cand_img = make_image(10), make_image(90)
    submit(worker, tmp_path, cand, suite, encode_png(cand_img))
    _wait_until_scored(worker, 1)  # the candidate's CLIPScore is done; it needs its reference
    assert cand.id not in recorder.scored
    assert cand.id not in recorder.failed

    submit(worker, tmp_path, ref, suite, encode_png(ref_img))
    recorder.wait_for(ref.id, cand.id)
    assert recorder.scored[cand.id].lpips == pytest.approx(_lpips(cand_img, ref_img))


def test_when_the_reference_fails_its_candidates_fail_parked_or_later(
    worker: ScoringWorker, recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    worker.provide(double_specs(EdgeCLIP()))
    ref = make_case(suite, "bf16", prompt="ink")
    early, late = make_case(suite, "fp8", prompt="ink"), make_case(suite, "nvfp4", prompt="ink")
    submit(worker, tmp_path, early, suite, encode_png(make_image(5)))
    _wait_until_scored(worker, 1)
    error = ZImageError("the server ran out of memory", hint="use a smaller batch")
    worker.reference_failed(ref.key, error)
    recorder.wait_for(early.id)
    submit(worker, tmp_path, late, suite, encode_png(make_image(6)))
    recorder.wait_for(late.id)

    assert not recorder.scored.keys() & {early.id, late.id}
    for case in (early, late):
        failure = recorder.failed[case.id]
        assert f"the reference case {ref.id} failed" in failure.message
        assert "out of memory" in failure.message
        assert failure.hint == "use a smaller batch"


def test_an_undecodable_reference_fails_itself_and_its_candidates(
    worker: ScoringWorker, recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    worker.provide(double_specs(EdgeCLIP()))
    ref, cand = make_case(suite, "bf16", prompt="sign"), make_case(suite, "fp8", prompt="sign")
    submit(worker, tmp_path, ref, suite, b"<html>502 Bad Gateway</html>")
    submit(worker, tmp_path, cand, suite, encode_png(make_image(7)))
    recorder.wait_for(ref.id, cand.id)

    assert isinstance(recorder.failed[ref.id], ImageDecodeError)
    assert "not a PNG" in recorder.failed[ref.id].message
    assert "no reference image" in recorder.failed[cand.id].message


def test_what_is_ready_is_scored_in_batches(
    worker: ScoringWorker, recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    refs = [
        make_case(suite, "bf16", prompt=p, seed=s) for p in ("cat", "ink", "sign") for s in (1, 2)
    ]
    cands = [make_case(suite, "fp8", prompt=c.prompt.key, seed=c.seed) for c in refs[:4]]
    for i, case in enumerate([*refs, *cands]):  # all queued before the scorers arrive
        submit(worker, tmp_path, case, suite, encode_png(make_image(i * 11)))
    clip = EdgeCLIP()
    worker.provide(double_specs(clip))
    recorder.wait_for(*[c.id for c in [*refs, *cands]])

    assert not recorder.failed
    assert list(worker.batches) == [4, 4, 2]  # batch_size 4: what was waiting, drained in order
    assert clip.calls == [4, 4, 2]
    assert worker.scored == 10


def test_a_flat_image_is_reported_blank(
    worker: ScoringWorker, recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    worker.provide(double_specs(EdgeCLIP()))
    ref = make_case(suite, "bf16", seed=3)
    submit(worker, tmp_path, ref, suite, encode_png(make_image(0, flat=True)))
    recorder.wait_for(ref.id)
    assert recorder.scored[ref.id].blank is True


def test_scorers_that_failed_to_build_fail_every_case_with_that_error(
    worker: ScoringWorker, recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    error = ScorerError("open_clip could not load the weights", hint="check the file")
    worker.provide_error(error)
    ref, cand = make_case(suite, "bf16"), make_case(suite, "fp8")
    submit(worker, tmp_path, ref, suite, encode_png(make_image(1)))
    submit(worker, tmp_path, cand, suite, encode_png(make_image(2)))
    recorder.wait_for(ref.id, cand.id)
    assert recorder.failed[ref.id] is error
    assert "open_clip could not load the weights" in recorder.failed[cand.id].message


def test_stopping_before_the_scorers_arrive_fails_what_waits(
    recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    worker = ScoringWorker(
        decode=lambda data, name: decode_png(data, label=name),
        is_blank=is_blank,
        on_scored=recorder.on_scored,
        on_failed=recorder.on_failed,
    )
    worker.start()
    ref = make_case(suite, "bf16")
    submit(worker, tmp_path, ref, suite, encode_png(make_image(1)))
    worker.stop()
    assert "stopped before the scorers were ready" in recorder.failed[ref.id].message


class _FailsOnce(EdgeCLIP):
    def score(
        self, images: Sequence[Any], texts: Sequence[str], labels: Sequence[str] | None = None
    ) -> list[float]:
        if not self.calls:
            self.calls.append(-1)
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return super().score(images, texts, labels)


def test_a_crash_in_a_batch_fails_that_batch_and_the_worker_goes_on(
    worker: ScoringWorker, recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    worker.provide(double_specs(_FailsOnce()))
    first, second = make_case(suite, "bf16", seed=1), make_case(suite, "bf16", seed=2)
    submit(worker, tmp_path, first, suite, encode_png(make_image(3)))
    recorder.wait_for(first.id)
    submit(worker, tmp_path, second, suite, encode_png(make_image(4)))
    recorder.wait_for(second.id)

    failure = recorder.failed[first.id]
    assert isinstance(failure, ScorerError)
    assert "illegal memory access" in failure.message
    assert second.id in recorder.scored


class _FailsOnTinyImages(EdgeCLIP):
    """A scorer that cannot take a 1x1 image, as a real network's first conv cannot."""

    def score(
        self,
        images: Sequence[Any],
        texts: Sequence[str],
        labels: Sequence[str] | None = None,
    ) -> list[float]:
        if any(min(image.shape[-2:]) < 2 for image in images):
            raise RuntimeError("Calculated padded input size per channel: (1 x 1)")
        return super().score(images, texts, labels)


def test_one_bad_image_fails_only_its_own_case_not_its_batch(
    worker: ScoringWorker, recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    good = [make_case(suite, "bf16", prompt=p, seed=1) for p in ("cat", "ink", "sign")]
    tiny = make_case(suite, "bf16", prompt="cat", seed=2)
    for i, case in enumerate(good):  # all queued before the scorers arrive: one batch
        submit(worker, tmp_path, case, suite, encode_png(make_image(i * 11)))
    submit(worker, tmp_path, tiny, suite, encode_png(make_image(5, size=1)))
    worker.provide(double_specs(_FailsOnTinyImages()))
    recorder.wait_for(*[c.id for c in [*good, tiny]])

    assert list(worker.batches) == [4]
    assert set(recorder.failed) == {tiny.id}
    assert "1 x 1" in recorder.failed[tiny.id].message
    assert {c.id for c in good} <= set(recorder.scored)


class _AlexLPIPS(MeanAbsLPIPS):
    """MeanAbsLPIPS that names the AlexNet trunk (256 working bytes per pixel of a pair) and
    records how many pairs each call got."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def info(self) -> dict[str, str]:
        return {"model": "alex"}

    def distance(
        self,
        images_a: Sequence[Any],
        images_b: Sequence[Any],
        labels: Sequence[tuple[str, str]] | None = None,
    ) -> list[float]:
        self.calls.append(len(images_a))
        return super().distance(images_a, images_b, labels)


def _budget_worker(recorder: Recorder, **kwargs: Any) -> ScoringWorker:
    worker = ScoringWorker(
        decode=lambda data, name: decode_png(data, label=name),
        is_blank=is_blank,
        on_scored=recorder.on_scored,
        on_failed=recorder.on_failed,
        batch_size=4,
        decode_threads=2,
        **kwargs,
    )
    worker.start()
    return worker


def test_each_scorer_call_stays_within_the_memory_budget(
    recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    # 16x16 pairs at 256 bytes per pixel: 64 KiB each; a budget of two pairs splits the
    # batch of four candidates into calls of two (CLIPScore, 64 B/px, still takes four).
    worker = _budget_worker(recorder, memory_budget=2 * 16 * 16 * 256)
    refs = [make_case(suite, "bf16", prompt=p) for p in ("cat", "ink", "sign")]
    cands = [make_case(suite, c, prompt=p) for p in ("cat", "ink") for c in ("fp8", "nvfp4")]
    for i, case in enumerate(refs):
        submit(worker, tmp_path, case, suite, encode_png(make_image(i)))
    lpips, clip = _AlexLPIPS(), EdgeCLIP()
    worker.provide(double_specs(clip, lpips))
    recorder.wait_for(*[c.id for c in refs])
    for i, case in enumerate(cands):
        submit(worker, tmp_path, case, suite, encode_png(make_image(50 + i)))
    recorder.wait_for(*[c.id for c in cands])
    worker.stop()

    assert not recorder.failed
    assert max(lpips.calls) <= 2
    assert sum(lpips.calls) == 4
    assert max(clip.calls) > 2  # the budget is per metric: CLIPScore's calls are not split
    assert worker.calls.memory_budget == 2 * 16 * 16 * 256


def test_waiting_and_parked_images_hold_no_pixels_and_kept_references_stay_in_budget(
    recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    one_image = 3 * 16 * 16  # bytes of a decoded 16x16 image
    worker = _budget_worker(recorder, memory_budget=5 * one_image)
    worker.provide(double_specs(EdgeCLIP()))
    seeds = range(1, 13)
    cands = [make_case(suite, "fp8", seed=s) for s in seeds]
    for i, case in enumerate(cands):  # no reference yet: every candidate is parked
        submit(worker, tmp_path, case, suite, encode_png(make_image(i)))
    _wait_until_scored(worker, len(cands))
    assert worker.held["parked"] == len(cands)
    assert worker.held["parked_decoded"] == 0

    refs = [make_case(suite, "bf16", seed=s) for s in seeds]
    for i, case in enumerate(refs):
        submit(worker, tmp_path, case, suite, encode_png(make_image(100 + i)))
    recorder.wait_for(*[c.id for c in [*refs, *cands]])
    assert not recorder.failed
    held = worker.held
    assert held["parked"] == 0
    assert held["reference_bytes"] <= 5 * one_image
    assert held["reference_images"] == 5  # the most recent ones; older ones are reread
    # a candidate of an evicted reference still pairs with the right image
    late = make_case(suite, "nvfp4", seed=1)
    submit(worker, tmp_path, late, suite, encode_png(make_image(7)))
    recorder.wait_for(late.id)
    worker.stop()
    assert recorder.scored[late.id].lpips == pytest.approx(_lpips(make_image(7), make_image(100)))


def test_a_candidate_whose_reference_never_comes_fails_at_the_deadline(
    recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    worker = _budget_worker(recorder, reference_wait=0.5)
    worker.provide(double_specs(EdgeCLIP()))
    cand = make_case(suite, "fp8", prompt="ink", seed=9)
    started = time.monotonic()
    submit(worker, tmp_path, cand, suite, encode_png(make_image(3)))
    recorder.wait_for(cand.id)
    waited = time.monotonic() - started
    worker.stop()

    failure = recorder.failed[cand.id]
    assert f"its reference case {cand.reference_id} was neither scored" in failure.message
    assert "--zimage-timeout" in (failure.hint or "")
    assert 0.5 <= waited < WAIT


class _SlowCLIP(EdgeCLIP):
    """One second per call: a scorer on a loaded CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    def score(
        self, images: Sequence[Any], texts: Sequence[str], labels: Sequence[str] | None = None
    ) -> list[float]:
        self.started.set()
        time.sleep(1.0)
        return super().score(images, texts, labels)


def test_a_stop_that_drops_the_backlog_starts_no_further_scorer_call(
    recorder: Recorder, suite: Suite, tmp_path: Path
) -> None:
    # CLIPScore's calls take two 16x16 images (64 B/px): the batch of four needs two calls
    worker = _budget_worker(recorder, memory_budget=2 * 16 * 16 * 64)
    clip = _SlowCLIP()
    cases = [make_case(suite, "bf16", prompt=p, seed=s) for p in ("cat", "ink") for s in (1, 2, 3)]
    for i, case in enumerate(cases):
        submit(worker, tmp_path, case, suite, encode_png(make_image(i * 7)))
    worker.provide(double_specs(clip))
    assert clip.started.wait(WAIT)
    started = time.monotonic()
    worker.stop(drop_pending=True)
    took = time.monotonic() - started

    assert took < 3.0  # the call in flight ends; no other call starts, in its batch or after
    assert clip.calls == [2]
    assert set(recorder.scored) | set(recorder.failed) == {c.id for c in cases}
    stopped = [e for e in recorder.failed.values() if "the run stopped" in e.message]
    assert len(stopped) == len(cases) - clip.calls[0]
