"""The built-in metrics as :class:`~pytest_zimage_quality.metrics.ScorerSpec`: the same
interface a user's scorer goes through.

- ``clipscore`` (reference-free, higher is better) and ``clip_image`` (reference-based: cosine
  of the candidate's and its reference's CLIP image embeddings). One CLIP model serves both:
  the embeddings computed for CLIPScore are kept, so the similarity costs no extra pass.
- ``lpips`` (reference-based, lower is better).
- ``text_accuracy`` (reference-free, on the prompts that declare text; OCR on a CPU thread).
- ``psnr`` and ``ssim`` (reference-based, higher is better; scikit-image on a CPU thread).

Scorer objects are duck-typed (a conftest may supply its own CLIP or LPIPS through
``pytest_zimage_make_clip_scorer`` / ``..._lpips_scorer``): a CLIP scorer without
``score_and_embed`` still gives ``clipscore``, just no ``clip_image``.
"""

from __future__ import annotations

import collections
import importlib.util
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .. import ocr, similarity
from ..errors import ZImageWarning
from ..metrics import REFERENCE_BASED, REFERENCE_FREE, PromptInfo, ScoreBatch, ScorerSpec
from ..settings import default

__all__ = [
    "builtin_specs",
    "clip_specs",
    "lpips_spec",
    "ocr_spec",
    "ocr_threads",
    "similarity_specs",
]

#: What text accuracy imports (the ``ocr`` extra).
_OCR_MODULES = ("rapidocr", "onnxruntime", "rapidfuzz")

#: Image embeddings kept for the CLIP image similarity (a few KiB each).
_EMBEDDINGS_KEPT = 4096


def _info(scorer: Any) -> Mapping[str, Any]:
    info = getattr(scorer, "info", None)
    data = info() if callable(info) else {}
    facts = dict(data) if isinstance(data, Mapping) else {}
    facts.setdefault("name", str(getattr(scorer, "name", type(scorer).__name__)))
    facts["class"] = type(scorer).__qualname__
    return facts


class _ClipAdapter:
    """CLIPScore that remembers each image's embedding, for ``clip_image`` later."""

    def __init__(self, clip: Any) -> None:
        self.clip = clip
        self._embeddings: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def embeds(self) -> bool:
        return callable(getattr(self.clip, "score_and_embed", None))

    def prepare(self, prompts: Sequence[PromptInfo]) -> None:
        embed = getattr(self.clip, "embed_texts", None)
        if callable(embed):
            texts = {p.text: p.key for p in prompts}
            embed(list(texts), labels=list(texts.values()))

    def clipscore(self, batch: ScoreBatch) -> list[float]:
        labels = [p.key for p in batch.prompts]
        if not self.embeds:
            return list(self.clip.score(list(batch.images), batch.texts, labels=labels))
        scores, embeddings = self.clip.score_and_embed(list(batch.images), batch.texts, labels)
        with self._lock:
            for key, row in zip(batch.keys, embeddings, strict=True):
                self._embeddings[key] = row
                self._embeddings.move_to_end(key)
            while len(self._embeddings) > _EMBEDDINGS_KEPT:
                self._embeddings.popitem(last=False)
        return list(scores)

    def _embedding(self, key: str, image: Any) -> Any:
        with self._lock:
            row = self._embeddings.get(key)
        if row is None:  # dropped from the store (a long run): embed it again
            row = self.clip.embed_images([image])[0]
        return row

    def image_similarity(self, batch: ScoreBatch) -> list[float]:
        import torch  # noqa: PLC0415

        a = torch.stack(
            [self._embedding(k, i) for k, i in zip(batch.keys, batch.images, strict=True)]
        )
        b = torch.stack(
            [
                self._embedding(k, i)
                for k, i in zip(batch.reference_keys, batch.references, strict=True)
            ]
        )
        with self._lock:  # a candidate's embedding is needed once; references stay
            for key in batch.keys:
                self._embeddings.pop(key, None)
        return list(self.clip.image_similarity(a, b))


def clip_specs(clip: Any) -> list[ScorerSpec]:
    """``clipscore``, and ``clip_image`` when the scorer can hand out its embeddings."""
    adapter = _ClipAdapter(clip)
    device = str(getattr(clip, "device", "cpu"))
    identity = str(getattr(clip, "weights_identity", ""))
    specs = [
        ScorerSpec(
            name="clipscore",
            label="CLIPScore",
            kind=REFERENCE_FREE,
            higher_is_better=True,
            score=adapter.clipscore,
            device=device,
            weights_identity=identity,
            prepare=adapter.prepare,
            info=lambda: _info(clip),
        )
    ]
    if adapter.embeds:
        specs.append(
            ScorerSpec(
                name="clip_image",
                label="CLIP image sim.",
                kind=REFERENCE_BASED,
                higher_is_better=True,
                score=adapter.image_similarity,
                device=device,
                weights_identity=identity,
                info=lambda: {
                    "name": "CLIP image-embedding cosine to the reference",
                    "model": _info(clip).get("model", ""),
                },
            )
        )
    return specs


def lpips_spec(lpips: Any) -> ScorerSpec:
    def score(batch: ScoreBatch) -> list[float]:
        labels = list(zip(batch.keys, batch.reference_keys, strict=True))
        return list(lpips.distance(list(batch.images), list(batch.references), labels=labels))

    return ScorerSpec(
        name="lpips",
        label="LPIPS",
        kind=REFERENCE_BASED,
        higher_is_better=False,
        score=score,
        device=str(getattr(lpips, "device", "cpu")),
        weights_identity=str(getattr(lpips, "weights_identity", "")),
        info=lambda: _info(lpips),
        # the study's boundary; the run's --zimage-lpips-close replaces it in the summary
        close_below=float(default("lpips_close")),
    )


def _has_text(prompt: PromptInfo) -> bool:
    return prompt.expected_text is not None


def ocr_spec(ocr: Any) -> ScorerSpec:
    """Text accuracy of the prompts that declare text; the detail is what OCR read."""

    def score(batch: ScoreBatch) -> tuple[list[float], list[str]]:
        expected = [p.expected_text or "" for p in batch.prompts]
        accuracies, readings = ocr.score(list(batch.images), expected)
        return list(accuracies), [str(r) for r in readings]

    return ScorerSpec(
        name="text_accuracy",
        label="Text acc.",
        kind=REFERENCE_FREE,
        higher_is_better=True,
        score=score,
        device=str(getattr(ocr, "device", "cpu")),
        weights_identity=str(getattr(ocr, "weights_identity", "")),
        background=True,
        applies=_has_text,
        info=lambda: _info(ocr),
    )


def similarity_specs() -> list[ScorerSpec]:
    """PSNR and SSIM of each candidate against its reference (scikit-image)."""

    def labels(batch: ScoreBatch) -> list[str]:
        return [f"{k} against {r}" for k, r in zip(batch.keys, batch.reference_keys, strict=True)]

    def psnr(batch: ScoreBatch) -> list[float]:
        return similarity.psnr(list(batch.images), list(batch.references), labels(batch))

    def ssim(batch: ScoreBatch) -> list[float]:
        return similarity.ssim(list(batch.images), list(batch.references), labels(batch))

    facts = {"library": "scikit-image (skimage.metrics)"}
    return [
        ScorerSpec(
            name="psnr",
            label="PSNR dB",
            kind=REFERENCE_BASED,
            higher_is_better=True,
            score=psnr,
            background=True,
            info=lambda: {"name": "PSNR", **facts},
        ),
        ScorerSpec(
            name="ssim",
            label="SSIM",
            kind=REFERENCE_BASED,
            higher_is_better=True,
            score=ssim,
            background=True,
            info=lambda: {"name": "SSIM (Wang et al. 2004 settings)", **facts},
        ),
    ]


def ocr_threads() -> int:
    """onnxruntime threads for OCR: half the cores, at most 4, so generation keeps the rest."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def builtin_metric_kinds(suites: Sequence[Any]) -> dict[str, str]:
    """The built-in metrics a run of ``suites`` will have, name -> kind, known before any
    model is built (``builtin_specs`` builds the same set): for checking a gate metric's name
    at collection, before generation."""
    kinds = {"clipscore": REFERENCE_FREE, "clip_image": REFERENCE_BASED, "lpips": REFERENCE_BASED}
    wants_text = any(getattr(p, "expected_text", None) for s in suites for p in s.prompts)
    if wants_text and all(importlib.util.find_spec(m) is not None for m in _OCR_MODULES):
        kinds["text_accuracy"] = REFERENCE_FREE
    if importlib.util.find_spec("skimage") is not None:
        kinds.update(psnr=REFERENCE_BASED, ssim=REFERENCE_BASED)
    return kinds


def builtin_specs(clip: Any, lpips: Any, *, suites: Sequence[Any]) -> list[ScorerSpec]:
    """Every built-in metric of a run, in column order.

    ``text_accuracy`` only when a prompt of ``suites`` declares its text; without the ``ocr``
    (or ``metrics``) extra, one warning says how to install it and the run goes on without
    that metric.
    """
    specs = [*clip_specs(clip), lpips_spec(lpips)]
    if any(getattr(p, "expected_text", None) for suite in suites for p in suite.prompts):
        missing = [m for m in _OCR_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            warnings.warn(
                ZImageWarning(
                    f"text accuracy is off: {', '.join(missing)} not installed: "
                    f"{ocr.INSTALL_HINT} (the other metrics run)"
                ),
                stacklevel=2,
            )
        else:
            specs.append(ocr_spec(ocr.OCRScorer.load("cpu", threads=ocr_threads())))
    if importlib.util.find_spec("skimage") is None:
        warnings.warn(
            ZImageWarning(
                f"PSNR and SSIM are off: scikit-image is not installed: "
                f"{similarity.INSTALL_HINT} (the other metrics run)"
            ),
            stacklevel=2,
        )
    else:
        specs.extend(similarity_specs())
    return specs
