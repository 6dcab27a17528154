"""The scorers' defaults and fixed names, apart from any code that loads a model.

The defaults are the option table's (``settings.OPTIONS``): a scorer built without arguments
is the one ``--zimage-clip-model`` & co. build by default. Nothing here imports torch.
"""

from __future__ import annotations

from ..settings import OPTIONS, default

__all__ = [
    "DEFAULT_CLIP_MODEL",
    "DEFAULT_CLIP_PRETRAINED",
    "DEFAULT_DEVICE",
    "DEFAULT_LPIPS_NET",
    "DEFAULT_PRECISION",
    "PRECISIONS",
    "RANDOM",
    "RANDOM_WEIGHTS_BANNER",
]

#: open_clip architecture used by default (the study's model).
DEFAULT_CLIP_MODEL: str = default("clip_model")
#: Default pretrained tag: LAION-2B, trained with the standard GELU that ``ViT-B-32`` builds.
#: (OpenAI's weights need QuickGELU: use model ``ViT-B-32-quickgelu`` with tag ``openai``.)
DEFAULT_CLIP_PRETRAINED: str = default("clip_pretrained")
#: LPIPS trunk network used by default (the study's).
DEFAULT_LPIPS_NET: str = default("lpips_net")
#: Where the scorers run: ``auto`` is the first CUDA GPU, else the CPU.
DEFAULT_DEVICE: str = default("device")
#: ``weights_identity`` and ``pretrained`` of a randomly initialised scorer.
RANDOM = "random"
#: What every report of a run with random weights must say.
RANDOM_WEIGHTS_BANNER = "RANDOM WEIGHTS — NOT A QUALITY MEASUREMENT"
#: The ``precision`` values a scorer accepts.
PRECISIONS: tuple[str, ...] = OPTIONS["precision"].choices
#: The scorers' default numerics: strict IEEE fp32 (see :mod:`._precision`).
DEFAULT_PRECISION: str = default("precision")
