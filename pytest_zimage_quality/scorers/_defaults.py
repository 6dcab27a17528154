"""The scorers' defaults and fixed names, apart from any code so that settings can share them.

Nothing here imports torch or a scorer: the option table and the suite-file validation can
read the defaults without loading a model's module.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_CLIP_MODEL",
    "DEFAULT_CLIP_PRETRAINED",
    "DEFAULT_LPIPS_NET",
    "DEFAULT_PRECISION",
    "PRECISIONS",
    "RANDOM",
    "RANDOM_WEIGHTS_BANNER",
]

#: open_clip architecture used by default (the study's model).
DEFAULT_CLIP_MODEL = "ViT-B-32"
#: Default pretrained tag: LAION-2B, trained with the standard GELU that ``ViT-B-32`` builds.
#: (OpenAI's weights need QuickGELU: use model ``ViT-B-32-quickgelu`` with tag ``openai``.)
DEFAULT_CLIP_PRETRAINED = "laion2b_s34b_b79k"
#: LPIPS trunk network used by default (the study's).
DEFAULT_LPIPS_NET = "alex"
#: ``weights_identity`` and ``pretrained`` of a randomly initialised scorer.
RANDOM = "random"
#: What every report of a run with random weights must say.
RANDOM_WEIGHTS_BANNER = "RANDOM WEIGHTS — NOT A QUALITY MEASUREMENT"
#: The ``precision`` values a scorer accepts.
PRECISIONS = ("fp32", "tf32", "bf16")
#: The scorers' default numerics: strict IEEE fp32 (see :mod:`._precision`).
DEFAULT_PRECISION = "fp32"
