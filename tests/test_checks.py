"""The per-case check and its band: bounded run-level false alarms, broken images still fail."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from pytest_zimage_quality.checks import (
    BAND_CEILING,
    DEFAULT_BAND_SD,
    case_band,
    check_record,
)
from pytest_zimage_quality.records import CaseRecord


def _candidate(clip: float | None, ref: float | None, tolerance: float = 0.04) -> CaseRecord:
    return CaseRecord(
        suite="s",
        case_id="cat-nvfp4-s1",
        prompt="cat",
        prompt_text="a cat",
        config="nvfp4",
        config_label="NVFP4",
        seed=1,
        reference="bf16",
        role="candidate",
        clipscore=clip,
        reference_clipscore=ref,
        lpips=0.3,
        tolerance=tolerance,
        image_path="images/cat/nvfp4/s1.png",
        reference_image_path="images/cat/bf16/s1.png",
    )


def _reference(clip: float | None) -> CaseRecord:
    return _candidate(clip, None).with_(role="reference", config="bf16", clip_floor=0.2)


def test_scaled_band_by_hand():
    # m = 300 (30 prompts x 10 seeds, one candidate): z(1 - 0.05/300) = 3.5879; 0.02 z = 0.07176
    band = case_band(300)
    assert band.z == pytest.approx(3.5879, abs=1e-4)
    assert band.width == pytest.approx(0.07176, abs=1e-5)
    assert band.limited_by is None
    # m = 1: 0.02 z(0.95) = 0.0329 < tolerance 0.04 -> raised to the tolerance
    small = case_band(1)
    assert small.width == 0.04
    assert small.limited_by == "tolerance"
    # a huge run, or a wide SD: capped below the 0.10 drop of a broken image
    huge = case_band(10**6, sd=0.03)
    assert huge.width == BAND_CEILING
    assert huge.limited_by == "ceiling"
    fixed = case_band(300, mode="fixed", tolerance=0.04)
    assert fixed.width == 0.04
    assert "fixed band" in fixed.describe()
    assert "z(1 - 0.05/300)" in band.describe()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "wide"}, "band mode"),
        ({"sd": -0.1}, "sd"),
        ({"tolerance": math.nan}, "tolerance"),
        ({"family_alpha": 0.0}, "family_alpha"),
    ],
)
def test_band_rejects_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        case_band(10, **kwargs)


@pytest.mark.parametrize("configs", [1, 3])
@pytest.mark.parametrize(("prompts", "seeds"), [(6, 3), (30, 10)])
def test_family_wise_false_alarm_at_most_5_percent(prompts, seeds, configs):
    # No true drop, paired image-level SD 0.02 split into a prompt effect (shared by the seeds of
    # a prompt, independent per config) and seed noise. Bonferroni holds under any dependence.
    m = prompts * seeds * configs
    width = case_band(m).width
    rng = np.random.default_rng(prompts * 100 + seeds + configs)
    reps = 4_000
    between = rng.normal(0, 0.008, (reps, configs, prompts, 1))
    within = rng.normal(0, math.sqrt(0.02**2 - 0.008**2), (reps, configs, prompts, seeds))
    any_fail = np.any((between + within) < -width, axis=(1, 2, 3))
    rate = float(np.mean(any_fail))
    se = math.sqrt(max(rate * (1 - rate), 1e-4) / reps)
    assert rate <= 0.05 + 2 * se
    # the fixed 0.04 band at 30 x 10 fires in nearly every healthy run (the finding)
    if (prompts, seeds) == (30, 10):
        assert float(np.mean(np.any((between + within) < -0.04, axis=(1, 2, 3)))) > 0.9


@pytest.mark.parametrize("m", [1, 18, 300, 900, 10**6])
def test_a_broken_image_fails_its_case_whatever_the_run_size(m):
    band = case_band(m, sd=DEFAULT_BAND_SD)
    result = check_record(_candidate(0.23, 0.33), band=band)  # 0.10 below its reference
    assert not result.passed
    assert "is below -band" in result.message
    assert "images/cat/bf16/s1.png" in result.message


def test_fixed_tolerance_message_is_unchanged():
    result = check_record(_candidate(0.28, 0.33))
    assert not result.passed
    assert "delta -0.0500 is below -tolerance 0.0400 (LPIPS vs reference 0.300)" in result.message
    assert check_record(_candidate(0.30, 0.33)).passed


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, None])
def test_non_finite_candidate_or_reference_scores_fail_clearly(bad):
    for record in (_candidate(bad, 0.33), _candidate(0.33, bad)):
        result = check_record(record, band=case_band(18))
        assert not result.passed
        assert "not a finite number" in result.message
        assert "Traceback" not in result.message
    ref = check_record(_reference(bad))
    assert not ref.passed
    assert "not a finite number" in ref.message


def test_reference_floor_and_blank():
    assert check_record(_reference(0.33)).passed
    assert "below the floor" in check_record(_reference(0.15)).message
    assert "blank" in check_record(_reference(0.33), blank=True).message


def test_band_z_matches_scipy():
    assert case_band(50).z == pytest.approx(float(sps.norm.isf(0.05 / 50)))
