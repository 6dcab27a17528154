"""The two scorers: CLIPScore (open_clip) and LPIPS (the ``lpips`` package), resident and batched.

Both are built once with ``load(...)`` onto a device and then score many images; their
numbers are the libraries' own numbers (see ``docs/scorers.md`` for how that is checked):

- :class:`CLIPScorer` — raw cosine similarity of the open_clip image and text embeddings,
  with PIL-exact preprocessing on the device;
- :class:`LPIPSScorer` — ``lpips.LPIPS`` on batched same-sized pairs.

Weights are resolved offline, never downloaded implicitly (:func:`resolve_clip_weights`,
:func:`resolve_lpips_weights`). Random weights are used only on request
(``random_weights=True``); such a scorer reports ``weights_identity == "random"`` and its
``describe()`` says :data:`RANDOM_WEIGHTS_BANNER`. Numerics are strict fp32 unless
``precision`` says otherwise (:func:`precision_scope`).

The implementation is private, one concern per module, in the manner of httpx:

    _defaults   default model names, precisions, the random-weights banner (no code)
    _runtime    optional imports, device resolution, quiet and seeded model construction
    _precision  fp32 / TF32 / bf16 scopes that restore torch's global flags
    _weights    offline lookup of open_clip and LPIPS weights, file identity
    _resize     Pillow's 8-bit resampling as matrix products on the device
    _clip       CLIPScorer
    _lpips      LPIPSScorer
    _budget     working memory per pixel of each metric (batches sized to a memory budget)
    _builtin    the built-in metrics as ScorerSpecs (CLIPScore, CLIP image similarity, LPIPS,
                text accuracy, PSNR, SSIM): the interface a user's scorer goes through
    _plugin     scorers of installed packages (the entry-point group)

A new scorer is one more private module beside ``_clip`` and ``_lpips`` that uses the shared
ones; its public class is re-exported here. torch, torchvision, open_clip and lpips are
imported inside the functions that use them, so importing this package (and
``pytest --help``) stays cheap. Nothing here imports pytest.
"""

from __future__ import annotations

from ._budget import working_bytes_per_pixel
from ._builtin import builtin_specs, clip_specs, lpips_spec, ocr_spec, similarity_specs
from ._clip import CLIPScorer
from ._defaults import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_PRETRAINED,
    DEFAULT_LPIPS_NET,
    DEFAULT_PRECISION,
    PRECISIONS,
    RANDOM,
    RANDOM_WEIGHTS_BANNER,
)
from ._lpips import LPIPSScorer
from ._plugin import entry_point_scorers, flatten_specs
from ._precision import precision_scope
from ._runtime import resolve_device
from ._weights import (
    LPIPS_TRUNK_URLS,
    ResolvedWeights,
    resolve_clip_weights,
    resolve_lpips_weights,
    sha256_file,
)

__all__ = [
    "DEFAULT_CLIP_MODEL",
    "DEFAULT_CLIP_PRETRAINED",
    "DEFAULT_LPIPS_NET",
    "DEFAULT_PRECISION",
    "LPIPS_TRUNK_URLS",
    "PRECISIONS",
    "RANDOM",
    "RANDOM_WEIGHTS_BANNER",
    "CLIPScorer",
    "LPIPSScorer",
    "ResolvedWeights",
    "builtin_specs",
    "clip_specs",
    "entry_point_scorers",
    "flatten_specs",
    "lpips_spec",
    "ocr_spec",
    "precision_scope",
    "resolve_clip_weights",
    "resolve_device",
    "resolve_lpips_weights",
    "sha256_file",
    "similarity_specs",
    "working_bytes_per_pixel",
]
