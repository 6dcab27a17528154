"""CLIPScore with open_clip: resident, batched, with the library's own numbers.

:class:`CLIPScorer` gives the raw cosine similarity of the L2-normalised open_clip image and
text embeddings (the study's scale, ~0.33 for a good render). Text embeddings are cached per
prompt. Image preprocessing (bicubic shortest-side resize, centre crop, normalise) runs on the
scorer's device and reproduces PIL's 8-bit resampling bit for bit (:mod:`._resize`), so the
batched GPU path sees exactly the pixels that open_clip's own ``preprocess`` would have
produced; :meth:`CLIPScorer.reference_score` is that library path, for checking.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ScorerError, ZImageWarning
from ..images import to_uint8_chw, to_uint8_chw_many
from ._defaults import (
    DEFAULT_CLIP_MODEL,
    DEFAULT_CLIP_PRETRAINED,
    DEFAULT_DEVICE,
    DEFAULT_PRECISION,
    RANDOM,
    RANDOM_WEIGHTS_BANNER,
)
from ._precision import check_precision, precision_label, precision_scope
from ._resize import INTERPOLATIONS, RESIZE_MODES, PILExactResize
from ._runtime import build_quietly, import_optional, resolve_device, seeded, stack_on
from ._weights import resolve_clip_weights, sha256_file

if TYPE_CHECKING:
    import os

    import torch

    from ..images import ImageLike

__all__ = ["CLIPScorer"]


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


class CLIPScorer:
    """CLIPScore with an open_clip model held on one device.

    Build it with :meth:`load`; then :meth:`score` (batched) or :meth:`score_one`. The score
    is the raw cosine similarity of the L2-normalised image and text embeddings (not the
    ``100 * max(cos, 0)`` of some papers): ~0.33 for a good render of an English prompt.

    Attributes: ``name`` ("CLIPScore"), ``higher_is_better`` (True), ``model`` (open_clip
    model name), ``pretrained`` (tag or file as given, or ``"random"``), ``device``,
    ``precision``, ``network`` (the ``torch.nn.Module``), ``tokenizer``, ``weights_path``,
    ``weights_identity`` (sha256 of the weights file, or ``"random"``), ``random_weights``,
    ``reference_transform`` (open_clip's own PIL preprocess, for comparisons).
    """

    name: ClassVar[str] = "CLIPScore"
    higher_is_better: ClassVar[bool] = True

    def __init__(
        self,
        *,
        network: Any,
        tokenizer: Any,
        model: str,
        pretrained: str,
        device: torch.device,
        weights_path: Path | None,
        weights_identity: str,
        precision: str = DEFAULT_PRECISION,
        batch_size: int = 32,
        reference_transform: Any = None,
    ) -> None:
        import torch  # noqa: PLC0415

        check_precision(precision)
        if batch_size < 1:
            raise ScorerError(f"batch_size must be >= 1, got {batch_size}")
        self.network = network
        self.tokenizer = tokenizer
        self.model = model
        self.pretrained = pretrained
        self.device = device
        self.weights_path = weights_path
        self.weights_identity = weights_identity
        self.random_weights = weights_identity == RANDOM
        self._text_cache: dict[str, torch.Tensor] = {}
        self._precision = precision
        self.batch_size = batch_size
        self.reference_transform = reference_transform
        cfg = dict(getattr(network.visual, "preprocess_cfg", {}) or {})
        size = cfg.get("size", 224)
        if isinstance(size, (tuple, list)):
            if len(size) != 2 or size[0] != size[1]:
                raise ScorerError(
                    f"open_clip model {model!r} wants a non-square input {size}",
                    hint="only square-input models are supported",
                )
            size = size[0]
        self.image_size = int(size)
        self.interpolation = str(cfg.get("interpolation", "bicubic"))
        if self.interpolation == "random":
            self.interpolation = "bicubic"  # open_clip: 'random' means bicubic at inference
        self.resize_mode = str(cfg.get("resize_mode", "shortest"))
        if self.interpolation not in INTERPOLATIONS or self.resize_mode not in RESIZE_MODES:
            raise ScorerError(
                f"open_clip model {model!r} preprocesses with {self.interpolation} / "
                f"{self.resize_mode}, which the scorer does not reproduce",
                hint="use a model whose preprocessing is bicubic or bilinear with resize_mode "
                "'shortest' or 'squash' (all ViT-B/L CLIP models are)",
            )
        mean = cfg.get("mean") or (0.48145466, 0.4578275, 0.40821073)
        std = cfg.get("std") or (0.26862954, 0.26130258, 0.27577711)
        self._mean = torch.as_tensor(mean, dtype=torch.float32, device=device).view(-1, 1, 1)
        self._std = torch.as_tensor(std, dtype=torch.float32, device=device).view(-1, 1, 1)
        self.context_length = int(getattr(tokenizer, "context_length", 77) or 77)
        self._resize = PILExactResize(self.image_size, self.interpolation, self.resize_mode, device)
        self._lock = threading.RLock()
        #: How many prompts went through the text encoder (each prompt once per scorer).
        self.text_encodes = 0

    @property
    def precision(self) -> str:
        """``fp32`` (default), ``tf32`` or ``bf16``; changing it drops the cached prompts,
        which were encoded with the old numerics."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        check_precision(value)
        if value != self._precision:
            self.clear_text_cache()
        self._precision = value

    # ---------------------------------------------------------------- construction

    @classmethod
    def load(
        cls,
        model: str = DEFAULT_CLIP_MODEL,
        pretrained: str = DEFAULT_CLIP_PRETRAINED,
        *,
        device: str | torch.device = DEFAULT_DEVICE,
        random_weights: bool = False,
        precision: str = DEFAULT_PRECISION,
        batch_size: int = 32,
        cache_dir: str | os.PathLike[str] | None = None,
        download: bool = False,
    ) -> CLIPScorer:
        """Build the open_clip model once onto ``device``, in eval and inference mode.

        ``pretrained`` is an open_clip tag or a weights file (see
        :func:`resolve_clip_weights`). ``random_weights=True`` skips the weights entirely and
        initialises the network from a fixed seed: for dry runs and tests, never a quality
        measurement. ``cache_dir`` overrides the Hugging Face hub cache; ``download=True``
        allows fetching a missing tag file (off by default: a missing file is an error that
        says how to fetch it).
        """
        open_clip = import_optional("open_clip")
        dev = resolve_device(device)
        if random_weights:
            if model not in open_clip.list_models():
                raise ScorerError(
                    f"{model!r} is not an open_clip model name", hint=f"e.g. {DEFAULT_CLIP_MODEL!r}"
                )
            resolved = None
            net, _, transform = seeded(
                build_quietly,
                open_clip.create_model_and_transforms,
                model,
                pretrained=None,
                device="cpu",
            )
        else:
            resolved = resolve_clip_weights(
                model, pretrained, cache_dir=cache_dir, download=download
            )
            pp = resolved.preprocess
            try:
                net, _, transform = build_quietly(
                    open_clip.create_model_and_transforms,
                    model,
                    pretrained=str(resolved.path),
                    device="cpu",
                    image_mean=pp.get("mean"),
                    image_std=pp.get("std"),
                    image_interpolation=pp.get("interpolation"),
                    image_resize_mode=pp.get("resize_mode"),
                )
            except Exception as exc:
                raise ScorerError(
                    f"open_clip could not load {resolved.path} into {model!r}: "
                    f"{type(exc).__name__}: {exc}",
                    hint="is the file a complete open_clip checkpoint for this model? "
                    "(--zimage-clip-model must match the weights)",
                ) from exc
        net = net.to(dev).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        tokenizer = open_clip.get_tokenizer(model)
        return cls(
            network=net,
            tokenizer=tokenizer,
            model=model,
            pretrained=RANDOM if random_weights else pretrained,
            device=dev,
            weights_path=None if resolved is None else resolved.path,
            weights_identity=RANDOM if resolved is None else sha256_file(resolved.path),
            precision=precision,
            batch_size=batch_size,
            reference_transform=transform,
        )

    # ---------------------------------------------------------------- description

    def describe(self) -> str:
        """One line for report headers; says RANDOM WEIGHTS when they are."""
        if self.random_weights:
            weights = RANDOM_WEIGHTS_BANNER
        else:
            weights = f"{self.pretrained} (sha256 {self.weights_identity[:12]})"
        return (
            f"CLIPScore: open_clip {self.model} / {weights}, {self.device}, "
            f"{precision_label(self.precision, self.device)}"
        )

    def info(self) -> dict[str, Any]:
        """Plain facts for run files and reports."""
        return {
            "name": self.name,
            "model": self.model,
            "pretrained": self.pretrained,
            "weights_identity": self.weights_identity,
            "random_weights": self.random_weights,
            "device": str(self.device),
            "precision": self.precision,
            "higher_is_better": self.higher_is_better,
        }

    def __repr__(self) -> str:
        return f"<CLIPScorer {self.describe()}>"

    # ---------------------------------------------------------------- text

    def _token_count(self, text: str) -> int | None:
        encode = getattr(self.tokenizer, "encode", None)
        if encode is None or not hasattr(self.tokenizer, "sot_token_id"):
            return None
        return len(encode(text)) + 2  # + start and end of text

    def embed_texts(
        self, texts: Sequence[str], labels: Sequence[str | None] | None = None
    ) -> torch.Tensor:
        """L2-normalised text embeddings ``(N, D)``; each distinct prompt is encoded once
        per scorer and cached. A prompt longer than the context is truncated by the tokenizer
        (as open_clip does) with a :class:`ZImageWarning` naming it (by its label if given)."""
        import torch  # noqa: PLC0415

        if labels is not None and len(labels) != len(texts):
            raise ValueError(f"{len(labels)} labels for {len(texts)} texts")
        with self._lock:
            missing: list[str] = []
            missing_labels: list[str | None] = []
            for i, text in enumerate(texts):
                if not isinstance(text, str):
                    raise TypeError(f"prompt {i} is a {type(text).__name__}, not a str")
                if text not in self._text_cache and text not in missing:
                    missing.append(text)
                    missing_labels.append(labels[i] if labels is not None else None)
            if missing:
                for text, label in zip(missing, missing_labels, strict=True):
                    n = self._token_count(text)
                    if n is not None and n > self.context_length:
                        who = f"prompt {label!r}" if label else "prompt"
                        warnings.warn(
                            f"{who} ({_short(text)!r}) is {n} tokens, longer than "
                            f"{self.model}'s {self.context_length}-token context: CLIPScore "
                            f"sees only its first {self.context_length - 2} tokens",
                            ZImageWarning,
                            stacklevel=3,
                        )
                tokens = self.tokenizer(missing).to(self.device)
                with precision_scope(self.device, self.precision):
                    emb = self.network.encode_text(tokens).float()
                    emb = torch.nn.functional.normalize(emb, dim=-1)
                for text, row in zip(missing, emb, strict=True):
                    self._text_cache[text] = row
                self.text_encodes += len(missing)
            if not texts:
                return torch.empty(0, 0, device=self.device)
            return torch.stack([self._text_cache[t] for t in texts])

    def clear_text_cache(self) -> None:
        """Forget the cached prompt embeddings."""
        with self._lock:
            self._text_cache.clear()

    # ---------------------------------------------------------------- images

    def preprocess(
        self, images: Sequence[ImageLike], labels: Sequence[str | None] | None = None
    ) -> torch.Tensor:
        """Images -> the model's input batch ``(N, 3, S, S)`` float32 on the device: PIL-exact
        bicubic resize of the shortest side, centre crop, ``/255``, normalise by the model's
        mean and std; all on the device, same-sized images in one batched op."""
        import torch  # noqa: PLC0415

        imgs = to_uint8_chw_many(images, labels)
        s = self.image_size
        out = torch.empty((len(imgs), 3, s, s), dtype=torch.float32, device=self.device)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(imgs):
            groups.setdefault((int(img.shape[1]), int(img.shape[2])), []).append(i)
        with torch.inference_mode():
            for idxs in groups.values():
                batch = stack_on(self.device, [imgs[i] for i in idxs])
                pix = self._resize(batch)  # PIL-exact resize + centre crop
                # ToTensor (uint8 -> float32 / 255) then Normalize, as torchvision does them.
                pix32 = pix.to(torch.float32).div_(255.0).sub_(self._mean).div_(self._std)
                if len(idxs) == len(imgs):
                    out = pix32
                else:
                    out[torch.as_tensor(idxs, device=self.device)] = pix32
        return out

    def embed_images(
        self, images: Sequence[ImageLike], labels: Sequence[str | None] | None = None
    ) -> torch.Tensor:
        """L2-normalised image embeddings ``(N, D)`` on the device, in batches."""
        import torch  # noqa: PLC0415

        chunks = []
        for start in range(0, len(images), self.batch_size):
            stop = start + self.batch_size
            x = self.preprocess(images[start:stop], None if labels is None else labels[start:stop])
            with precision_scope(self.device, self.precision):
                emb = self.network.encode_image(x).float()
                chunks.append(torch.nn.functional.normalize(emb, dim=-1))
        if not chunks:
            return torch.empty(0, 0, device=self.device)
        return torch.cat(chunks)

    # ---------------------------------------------------------------- scores

    def score(
        self,
        images: Sequence[ImageLike],
        texts: Sequence[str],
        labels: Sequence[str | None] | None = None,
        *,
        text_labels: Sequence[str | None] | None = None,
    ) -> list[float]:
        """CLIPScore of each ``(images[i], texts[i])`` pair.

        ``labels`` name the images (decode errors) and, unless ``text_labels`` are given,
        also the prompts (truncation warnings).
        """
        return self.score_and_embed(images, texts, labels, text_labels=text_labels)[0]

    def score_and_embed(
        self,
        images: Sequence[ImageLike],
        texts: Sequence[str],
        labels: Sequence[str | None] | None = None,
        *,
        text_labels: Sequence[str | None] | None = None,
    ) -> tuple[list[float], torch.Tensor]:
        """:meth:`score`, plus the images' L2-normalised embeddings ``(N, D)``: the run keeps
        a reference image's embedding for the CLIP image similarity of its candidates."""
        import torch  # noqa: PLC0415

        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        if not images:
            return [], torch.empty(0, 0, device=self.device)
        txt = self.embed_texts(texts, text_labels if text_labels is not None else labels)
        img = self.embed_images(images, labels)
        with torch.inference_mode():
            sims = (img * txt).sum(dim=-1)
        return [float(v) for v in sims.cpu().tolist()], img

    def image_similarity(
        self, embeddings_a: torch.Tensor, embeddings_b: torch.Tensor
    ) -> list[float]:
        """Cosine similarity of pairs of image embeddings from :meth:`embed_images` (rows)."""
        import torch  # noqa: PLC0415

        with torch.inference_mode():
            return [float(v) for v in (embeddings_a * embeddings_b).sum(dim=-1).cpu().tolist()]

    def score_one(self, image: ImageLike, text: str, label: str | None = None) -> float:
        """CLIPScore of one image and one prompt."""
        return self.score([image], [text], None if label is None else [label])[0]

    def reference_score(self, image: ImageLike, text: str) -> float:
        """The libraries' own path, one image at a time, strict fp32: PIL image through
        open_clip's ``preprocess``, ``encode_image`` / ``encode_text``, no cache. Slow; for
        checking the fast path and for the benchmark's naive column."""
        from PIL import Image  # noqa: PLC0415

        img = to_uint8_chw(image).cpu()
        pil = Image.fromarray(img.permute(1, 2, 0).numpy())
        with precision_scope(self.device, "fp32"):
            x = self.reference_transform(pil).unsqueeze(0).to(self.device)
            ie = self.network.encode_image(x)
            te = self.network.encode_text(self.tokenizer([text]).to(self.device))
            ie = ie / ie.norm(dim=-1, keepdim=True)
            te = te / te.norm(dim=-1, keepdim=True)
            return float((ie * te).sum())
