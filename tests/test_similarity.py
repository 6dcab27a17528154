"""PSNR and SSIM of candidate/reference pairs: scikit-image's numbers, checked by hand."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from pytest_zimage_quality import ImageSizeMismatchError
from pytest_zimage_quality.similarity import psnr, ssim

skimage_metrics = pytest.importorskip(
    "skimage.metrics", reason="the metrics extra is not installed"
)


def picture(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    """A smooth (3, H, W) uint8 image with some texture."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w]
    base = 120 + 60 * np.sin(xs / 7.0 + seed) * np.cos(ys / 5.0)
    noise = rng.normal(0, 8, size=(3, h, w))
    out: np.ndarray = np.clip(base[None] + noise, 0, 255).astype(np.uint8)
    return out


def test_psnr_of_a_one_level_difference_is_20_log10_255() -> None:
    ref = np.full((3, 16, 16), 100, np.uint8)
    img = ref + 1
    assert psnr([img], [ref]) == [pytest.approx(20 * math.log10(255))]


def test_identical_images_give_infinite_psnr_and_ssim_one() -> None:
    ref = picture(1)
    assert psnr([ref], [ref]) == [math.inf]
    assert ssim([ref], [ref]) == [pytest.approx(1.0)]


def test_values_are_scikit_images_own_and_order_by_distortion() -> None:
    ref = picture(2)
    rng = np.random.default_rng(0)
    light = np.clip(ref + rng.normal(0, 3, ref.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(ref + rng.normal(0, 30, ref.shape), 0, 255).astype(np.uint8)
    p = psnr([light, heavy], [ref, ref])
    s = ssim([light, heavy], [ref, ref])
    assert p[0] > p[1]
    assert s[0] > s[1]
    hwc = ref.transpose(1, 2, 0)
    assert p[1] == pytest.approx(
        skimage_metrics.peak_signal_noise_ratio(hwc, heavy.transpose(1, 2, 0), data_range=255)
    )
    assert s[1] == pytest.approx(
        skimage_metrics.structural_similarity(
            hwc,
            heavy.transpose(1, 2, 0),
            channel_axis=-1,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def test_accepts_tensors_and_hwc_arrays_alike() -> None:
    ref, img = picture(3), picture(4)
    as_arrays = ssim([img], [ref])
    as_tensors = ssim([torch.from_numpy(img)], [torch.from_numpy(ref)])
    as_hwc = ssim([img.transpose(1, 2, 0)], [ref.transpose(1, 2, 0)])
    assert as_arrays == as_tensors == as_hwc
    assert psnr([], []) == []


def test_bad_pairs_are_clear_errors() -> None:
    with pytest.raises(
        ImageSizeMismatchError, match=r"photo-nvfp4-s42: image 64x48 and reference 32x48"
    ):
        psnr([picture(1)], [picture(1, w=32)], labels=["photo-nvfp4-s42"])
    with pytest.raises(ValueError, match="2 images but 1 references"):
        ssim([picture(1)] * 2, [picture(1)])
    with pytest.raises(TypeError, match="8-bit RGB"):
        ssim([picture(1).astype(np.float32)], [picture(1)])


def test_missing_scikit_image_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skimage.metrics", None)
    with pytest.raises(ModuleNotFoundError, match=r"pytest-zimage-quality\[metrics\]"):
        psnr([picture(1)], [picture(1)])
