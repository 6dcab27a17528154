"""Text-rendering accuracy with a real OCR model: RapidOCR's PP-OCR ONNX models on onnxruntime.

:class:`OCRScorer` reads the text in each image (detection, angle classification and
recognition, the ``rapidocr`` pipeline with its defaults), joins the lines it found in
reading order (top to bottom, then left to right) and scores the reading against the text the
prompt asked for with :func:`~pytest_zimage_quality.text_accuracy.text_accuracy`.

Why this model: the ``rapidocr`` wheel ships its detection, classification and recognition
models, so it runs offline, on the CPU, with no download (the project never downloads weights
at run time). The model files are the ones ``rapidocr``'s own model table names for its
defaults; they are passed to it by path, so it never reaches for the network, and their sha256
is the scorer's ``weights_identity``. A file that is missing or whose sha256 differs from the
table's raises :class:`~pytest_zimage_quality.ScorerError`.

Device: the CPU by default, so OCR runs beside the GPU scorers without taking GPU time from
generation; ``"cuda"`` / ``"cuda:N"`` use onnxruntime's CUDA provider (needs the
``onnxruntime-gpu`` package), ``"auto"`` takes CUDA when that provider is present.

``rapidocr``, ``onnxruntime`` and ``numpy`` are imported inside the functions that use them;
without the ``ocr`` extra, :meth:`OCRScorer.load` raises ``ModuleNotFoundError`` naming
``pip install 'pytest-zimage-quality[ocr]'``. This module does not import pytest.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, ClassVar

from .errors import ScorerError
from .text_accuracy import text_accuracy

__all__ = ["INSTALL_HINT", "ModelFile", "OCRScorer", "reading_order"]

#: What to run when the OCR extra is missing.
INSTALL_HINT = "pip install 'pytest-zimage-quality[ocr]'"

_STAGES = ("Det", "Cls", "Rec")
_CUDA = "CUDAExecutionProvider"


def _import(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"text accuracy needs {name.split('.')[0]!r}, which is not installed: {INSTALL_HINT}",
            name=exc.name,
        ) from exc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelFile:
    """One ONNX model of the pipeline: its stage (det, cls, rec), file and sha256."""

    stage: str
    path: Path
    sha256: str


def _default_models(engine_cls: Any) -> list[ModelFile]:
    """The model files rapidocr's own table names for its default configuration, checked."""
    base = _import("rapidocr.inference_engine.base")
    # an engine with the package's default config.yaml; it loads no model until first used
    cfg = engine_cls(params={"Global.log_level": "warning"}).cfg
    root = Path(cfg.Global.model_root_dir)
    files = []
    for stage in _STAGES:
        c = cfg[stage]
        info = base.InferSession.get_model_url(
            base.FileInfo(
                engine_type=c.engine_type,
                ocr_version=c.ocr_version,
                task_type=c.task_type,
                lang_type=c.lang_type,
                model_type=c.model_type,
            )
        )
        path = root / Path(str(info["model_dir"])).name
        if not path.is_file():
            raise ScorerError(
                f"rapidocr's {stage.lower()} model {path.name} is not in {root}",
                hint="reinstall rapidocr (its wheel ships the models): "
                "pip install --force-reinstall --no-deps rapidocr",
            )
        digest = _sha256(path)
        if digest != str(info["SHA256"]).lower():
            raise ScorerError(
                f"rapidocr's {stage.lower()} model {path} is corrupt: sha256 {digest[:12]}… "
                f"is not the {str(info['SHA256'])[:12]}… rapidocr expects",
                hint="reinstall rapidocr: pip install --force-reinstall --no-deps rapidocr",
            )
        files.append(ModelFile(stage.lower(), path, digest))
    return files


def _providers_device(device: str) -> str:
    """``"cpu"`` or ``"cuda:N"`` for a device spec, checked against onnxruntime's providers."""
    ort = _import("onnxruntime")
    has_cuda = _CUDA in ort.get_available_providers()
    if device == "cpu":
        return "cpu"
    if device == "auto":
        return "cuda:0" if has_cuda else "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        index = device.partition(":")[2] or "0"
        if not index.isdigit():
            raise ScorerError(f"OCR device {device!r} is not cpu, auto, cuda or cuda:N")
        if not has_cuda:
            raise ScorerError(
                f"OCR device {device!r} needs onnxruntime's CUDA provider, which this "
                f"onnxruntime {ort.__version__} does not have",
                hint="pip uninstall onnxruntime && pip install onnxruntime-gpu, "
                "or run OCR on the CPU (device='cpu')",
            )
        return f"cuda:{index}"
    raise ScorerError(f"OCR device {device!r} is not cpu, auto, cuda or cuda:N")


def reading_order(boxes: Sequence[Any], texts: Sequence[str]) -> str:
    """Join text boxes in reading order: lines top to bottom, boxes in a line left to right.

    ``boxes`` are quadrilaterals (four ``(x, y)`` corners); two boxes are on one line when
    their vertical centres are closer than half the smaller box's height. Words of a line
    are joined with a space, lines with a newline.
    """
    items = []
    for box, text in zip(boxes, texts, strict=True):
        ys = [float(p[1]) for p in box]
        xs = [float(p[0]) for p in box]
        items.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), text))
    items.sort(key=lambda it: (it[0], it[2]))
    lines: list[list[tuple[float, float, float, str]]] = []
    for item in items:
        line = lines[-1] if lines else None
        if line is not None and abs(item[0] - line[-1][0]) < 0.5 * min(item[1], line[-1][1]):
            line.append(item)
        else:
            lines.append([item])
    return "\n".join(" ".join(it[3] for it in sorted(ln, key=lambda it: it[2])) for ln in lines)


def _to_bgr(image: Any) -> Any:
    """An (H, W, 3) uint8 BGR array (what rapidocr takes) from a (3, H, W) uint8 tensor or
    array, an (H, W, 3) array, a PIL image, or anything ``images.to_uint8_chw`` accepts."""
    np = _import("numpy")
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
            arr = arr.transpose(1, 2, 0)
    elif hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image
        arr = np.asarray(image.convert("RGB"))
    else:
        from .images import to_uint8_chw  # noqa: PLC0415 (imports torch)

        arr = to_uint8_chw(image).cpu().numpy().transpose(1, 2, 0)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ScorerError(
            f"OCR takes 8-bit RGB images of shape (3, H, W) or (H, W, 3); got {arr.dtype} "
            f"{tuple(arr.shape)}"
        )
    return np.ascontiguousarray(arr[..., ::-1])


#: The shorter side RapidOCR's detector is configured for (``Det.limit_side_len``): it scales a
#: smaller image up to it but runs a larger one at full size. Shrinking a larger image to it
#: first halves the read time of a 1024² image and reads the same text (docs/metrics.md).
DETECTOR_SIDE = 736


def _shrink(arr: Any, side: int | None) -> Any:
    """``arr`` (H, W, 3) with its shorter side brought down to ``side`` (Lanczos), when
    larger; the recognizer resizes each text line to 48 px high anyway."""
    height, width = arr.shape[:2]
    if side is None or min(height, width) <= side:
        return arr
    from PIL import Image  # noqa: PLC0415 - only when reading

    np = _import("numpy")
    scale = side / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS))


class OCRScorer:
    """Text-rendering accuracy: RapidOCR reads each image, :func:`text_accuracy` scores it.

    Build it with :meth:`load`; then :meth:`read` and :meth:`score` (batched). Attributes:
    ``name``, ``higher_is_better`` (True), ``reference_based`` (False: it compares an image
    with the prompt's text, and the gate pairs a candidate's accuracy with its reference
    image's), ``device`` (``"cpu"`` or ``"cuda:N"``), ``models`` (the ONNX files and their
    sha256), ``weights_identity`` (one sha256 over the three files'), ``random_weights``
    (always False: the models are the real ones).
    """

    name: ClassVar[str] = "TextAccuracy"
    higher_is_better: ClassVar[bool] = True
    reference_based: ClassVar[bool] = False
    random_weights: ClassVar[bool] = False

    def __init__(
        self,
        engine: Any,
        *,
        device: str,
        models: Sequence[ModelFile],
        max_side: int | None = DETECTOR_SIDE,
    ) -> None:
        self.engine = engine
        #: images with a shorter side above this are shrunk to it before reading (None: never)
        self.max_side = max_side
        self.device = device
        self.models = tuple(models)
        combined = "\n".join(f"{m.stage}={m.sha256}" for m in self.models)
        self.weights_identity = hashlib.sha256(combined.encode()).hexdigest()
        # rapidocr's engine keeps per-call state (its preprocessing op): one call at a time.
        self._lock = threading.Lock()

    @classmethod
    def load(cls, device: str = "cpu", *, threads: int | None = None) -> OCRScorer:
        """Build the pipeline from the models in the ``rapidocr`` wheel, offline.

        ``threads`` caps onnxruntime's intra-op threads (default: all cores), to leave CPU
        for generation and the other scorers.
        """
        rapidocr = _import("rapidocr")
        dev = _providers_device(device)
        models = _default_models(rapidocr.RapidOCR)
        params: dict[str, Any] = {"Global.log_level": "warning"}
        for m in models:
            params[f"{m.stage.capitalize()}.model_path"] = str(m.path)
        if threads is not None:
            if threads < 1:
                raise ScorerError(f"OCR threads must be >= 1, got {threads}")
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
        if dev != "cpu":
            params["EngineConfig.onnxruntime.use_cuda"] = True
            params["EngineConfig.onnxruntime.cuda_ep_cfg.device_id"] = int(dev.partition(":")[2])
        try:
            engine = rapidocr.RapidOCR(params=params)
        except Exception as exc:  # rapidocr raises plain exceptions for bad configs
            raise ScorerError(
                f"rapidocr could not build its OCR pipeline: {exc}",
                hint=f"check the rapidocr and onnxruntime installation: {INSTALL_HINT}",
            ) from exc
        logging.getLogger("RapidOCR").setLevel(logging.WARNING)
        return cls(engine, device=dev, models=models)

    def describe(self) -> str:
        """One line for report headers."""
        files = ", ".join(f"{m.path.name} ({m.sha256[:12]})" for m in self.models)
        return f"TextAccuracy: rapidocr {self._version()} / {files}, {self.device}"

    def info(self) -> dict[str, Any]:
        """Plain facts for run files and reports."""
        return {
            "name": self.name,
            "library": f"rapidocr {self._version()}",
            "models": {m.stage: {"file": m.path.name, "sha256": m.sha256} for m in self.models},
            "weights_identity": self.weights_identity,
            "random_weights": self.random_weights,
            "device": self.device,
            "higher_is_better": self.higher_is_better,
            "reference_based": self.reference_based,
        }

    @staticmethod
    def _version() -> str:
        return version("rapidocr")

    def __repr__(self) -> str:
        return f"<OCRScorer {self.describe()}>"

    def read(self, image: Any) -> str:
        """The text RapidOCR finds in ``image``, lines in reading order ("" when none)."""
        bgr = _shrink(_to_bgr(image), self.max_side)
        with self._lock:
            result = self.engine(bgr)
        texts = getattr(result, "txts", None)
        boxes = getattr(result, "boxes", None)
        if not texts or boxes is None:
            return ""
        return reading_order(list(boxes), [str(t) for t in texts])

    def score(
        self, images: Sequence[Any], expected_texts: Sequence[str]
    ) -> tuple[list[float], list[str]]:
        """Text accuracy of each image against its expected text, and what was read."""
        if len(images) != len(expected_texts):
            raise ValueError(f"{len(images)} images but {len(expected_texts)} expected texts")
        readings = [self.read(image) for image in images]
        scores = [text_accuracy(r, e) for r, e in zip(readings, expected_texts, strict=True)]
        return scores, readings

    def warmup(self) -> None:
        """Load the three models' sessions (rapidocr builds them on first use)."""
        self.read(_warmup_image())


def _warmup_image() -> Any:
    """A small white image with black text, so detection finds a box and recognition runs."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415

    img = Image.new("RGB", (320, 96), "white")
    ImageDraw.Draw(img).text((16, 24), "OCR 123", fill="black", font=ImageFont.load_default(40))
    return img
