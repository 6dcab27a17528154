"""How much working memory a metric needs per pixel, so a scoring call fits a memory budget.

A scorer's memory is its weights plus the activations of one call, and the activations grow
with the batch and with the image: LPIPS (AlexNet) keeps five feature maps of both images
of a pair, normalised and differenced, ~250 bytes per pixel of the pair: 16 pairs of
1024x1024 images take ~4 GB. The scoring worker splits each batch into calls whose
estimated working memory stays within ``--zimage-score-memory``
(:func:`working_bytes_per_pixel` x pixels, at least one image per call).

The figures are peak-memory increases measured in fp32 on the CPU with
``benchmarks/scoring_memory.py`` (docs/reliability.md); a GPU holds the same tensors. A
metric not listed (CLIPScore and CLIP image similarity, which resize to 224 px first: an
8-byte copy of the image and the resize's intermediates; PSNR, SSIM, text accuracy; a user's
scorer) is given :data:`GENERIC_BYTES_PER_PIXEL`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..metrics import ScorerSpec

__all__ = ["BYTES_PER_PIXEL", "GENERIC_BYTES_PER_PIXEL", "working_bytes_per_pixel"]

#: Working bytes per pixel of one image (a pair for a reference-based metric), by
#: ``"<metric name>:<model>"`` (the model as the scorer's ``info()`` names it).
BYTES_PER_PIXEL: dict[str, int] = {
    "lpips:alex": 256,
    "lpips:vgg": 2048,
}
#: Any other metric: a float64 copy of the image pair and a few of its size.
GENERIC_BYTES_PER_PIXEL = 64


def working_bytes_per_pixel(spec: ScorerSpec) -> int:
    """The working memory ``spec`` needs per pixel of each image (or pair) it scores."""
    model = ""
    if spec.info is not None:
        try:
            model = str(spec.info().get("model", ""))
        except Exception:  # a user's info() that fails only costs the specific figure
            model = ""
    return BYTES_PER_PIXEL.get(f"{spec.name}:{model}", GENERIC_BYTES_PER_PIXEL)
