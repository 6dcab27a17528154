"""Image-to-image similarity of a candidate and its reference: PSNR and SSIM, from scikit-image.

Both are reference-based and higher is better; both take the 8-bit RGB images the scorers
see (``(3, H, W)`` uint8 tensors or arrays, as :mod:`pytest_zimage_quality.images` produces
them; ``(H, W, 3)`` arrays are accepted too) and compare pairs of the same size (a pair of
different sizes raises :class:`~pytest_zimage_quality.ImageSizeMismatchError`: nothing is
resized silently). The numbers are ``skimage.metrics``' own:

- :func:`psnr` — ``peak_signal_noise_ratio`` with ``data_range=255``, in dB. Identical
  images give ``inf`` (no noise at all); callers that write JSON must say so, not invent a
  finite number.
- :func:`ssim` — ``structural_similarity`` over the RGB channels with the settings of Wang
  et al. (2004), which scikit-image documents for matching the paper: a Gaussian window with
  σ = 1.5, population covariance, ``data_range=255``. In [-1, 1], 1 for identical images.

scikit-image and numpy are imported inside the functions; without the ``metrics`` extra the
functions raise ``ModuleNotFoundError`` naming ``pip install 'pytest-zimage-quality[metrics]'``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from .errors import ImageSizeMismatchError

__all__ = ["INSTALL_HINT", "psnr", "ssim"]

#: What to run when scikit-image is missing.
INSTALL_HINT = "pip install 'pytest-zimage-quality[metrics]'"


def _metrics() -> Any:
    try:
        return importlib.import_module("skimage.metrics")
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"PSNR and SSIM need scikit-image, which is not installed: {INSTALL_HINT}",
            name=exc.name,
        ) from exc


def _hwc(image: Any) -> Any:
    """An (H, W, 3) uint8 numpy array from a (3, H, W) tensor or array, or an (H, W, 3) array."""
    import numpy as np  # noqa: PLC0415

    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise TypeError(
            f"PSNR and SSIM take 8-bit RGB images of shape (3, H, W) or (H, W, 3); got "
            f"{arr.dtype} {tuple(arr.shape)}"
        )
    return arr


def _pairs(
    images: Sequence[Any],
    references: Sequence[Any],
    labels: Sequence[str] | None,
    metric: Callable[[Any, Any], float],
) -> list[float]:
    if len(images) != len(references):
        raise ValueError(f"{len(images)} images but {len(references)} references")
    out = []
    for i, (image, reference) in enumerate(zip(images, references, strict=True)):
        a, b = _hwc(image), _hwc(reference)
        if a.shape != b.shape:
            name = labels[i] if labels is not None else f"pair {i}"
            raise ImageSizeMismatchError(
                f"{name}: image {a.shape[1]}x{a.shape[0]} and reference "
                f"{b.shape[1]}x{b.shape[0]} differ in size",
                hint="generate the candidate and its reference at the same width and height",
            )
        out.append(float(metric(b, a)))
    return out


def psnr(
    images: Sequence[Any], references: Sequence[Any], labels: Sequence[str] | None = None
) -> list[float]:
    """PSNR in dB of each image against its reference (``inf`` when identical)."""
    import numpy as np  # noqa: PLC0415

    m = _metrics()

    def one(ref: Any, img: Any) -> float:
        with np.errstate(divide="ignore"):  # identical images: log10(x / 0) is the inf we want
            return float(m.peak_signal_noise_ratio(ref, img, data_range=255))

    return _pairs(images, references, labels, one)


def ssim(
    images: Sequence[Any], references: Sequence[Any], labels: Sequence[str] | None = None
) -> list[float]:
    """SSIM (Wang et al. settings, over RGB) of each image against its reference."""
    m = _metrics()
    return _pairs(
        images,
        references,
        labels,
        lambda ref, img: m.structural_similarity(
            ref,
            img,
            channel_axis=-1,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        ),
    )
