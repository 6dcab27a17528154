"""LPIPS with the ``lpips`` package: resident, batched pairs, the library's own numbers.

:class:`LPIPSScorer` runs ``lpips.LPIPS`` (AlexNet trunk by default, VGG selectable) on
batched pairs mapped to [-1, 1] exactly as ``lpips.im2tensor`` maps them. Pairs of different
sizes raise :class:`~pytest_zimage_quality.ImageSizeMismatchError`; nothing is resized
silently. The trunk's ImageNet weights are loaded from a local file (:mod:`._weights`); the
linear calibration layers are the ones the ``lpips`` package ships.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ImageSizeMismatchError, ScorerError
from ..images import to_uint8_chw, to_uint8_chw_many
from ._defaults import (
    DEFAULT_DEVICE,
    DEFAULT_LPIPS_NET,
    DEFAULT_PRECISION,
    RANDOM,
    RANDOM_WEIGHTS_BANNER,
)
from ._precision import check_precision, precision_label, precision_scope
from ._runtime import build_quietly, import_optional, resolve_device, seeded, stack_on
from ._weights import LPIPS_TRUNK_URLS, resolve_lpips_weights, sha256_file

if TYPE_CHECKING:
    import os

    import torch

    from ..images import ImageLike

__all__ = ["LPIPSScorer"]


def _load_trunk(network: Any, path: Path, net: str) -> None:
    """Load torchvision ImageNet weights (``features.N.*``) into ``lpips.LPIPS.net``'s slices."""
    import torch  # noqa: PLC0415

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ScorerError(
            f"cannot read LPIPS trunk weights {path}: {type(exc).__name__}: {exc}",
            hint=f"the file must be torchvision's {net} state dict "
            f"({LPIPS_TRUNK_URLS[net].rsplit('/', 1)[-1]})",
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ScorerError(f"{path} does not hold a state dict (found {type(state).__name__})")
    mapped: dict[str, Any] = {}
    for slice_name, block in network.net.named_children():
        for idx, _ in block.named_children():
            for pname in ("weight", "bias"):
                key = f"features.{idx}.{pname}"
                if key in state:
                    mapped[f"{slice_name}.{idx}.{pname}"] = state[key]
    try:
        network.net.load_state_dict(mapped, strict=True)
    except RuntimeError as exc:
        raise ScorerError(
            f"{path} is not torchvision's {net} ImageNet state dict: {exc}",
            hint=f"expected the file {LPIPS_TRUNK_URLS[net].rsplit('/', 1)[-1]} "
            f"from {LPIPS_TRUNK_URLS[net]}",
        ) from exc


class LPIPSScorer:
    """LPIPS distance with ``lpips.LPIPS`` held on one device.

    Build it with :meth:`load`; then :meth:`distance` (batched pairs) or
    :meth:`distance_one`. 0 means identical; the study's quantized configs sit at 0.17-0.31
    from the BF16 reference.

    Attributes: ``name`` ("LPIPS"), ``higher_is_better`` (False), ``model`` (trunk:
    ``alex`` or ``vgg``), ``pretrained`` (trunk weights file name, or ``"random"``),
    ``device``, ``precision``, ``channels_last``, ``network`` (the ``lpips.LPIPS`` module),
    ``weights_path``, ``weights_identity`` (sha256 of the trunk weights file, or
    ``"random"``), ``random_weights``. The linear calibration layers are always the ones the
    ``lpips`` package ships (v0.1).
    """

    name: ClassVar[str] = "LPIPS"
    higher_is_better: ClassVar[bool] = False

    def __init__(
        self,
        *,
        network: Any,
        model: str,
        pretrained: str,
        device: torch.device,
        weights_path: Path | None,
        weights_identity: str,
        precision: str = DEFAULT_PRECISION,
        batch_size: int = 16,
        channels_last: bool | None = None,
    ) -> None:
        import torch  # noqa: PLC0415

        check_precision(precision)
        if batch_size < 1:
            raise ScorerError(f"batch_size must be >= 1, got {batch_size}")
        self.network = network
        self.model = model
        self.pretrained = pretrained
        self.device = device
        self.weights_path = weights_path
        self.weights_identity = weights_identity
        self.random_weights = weights_identity == RANDOM
        self.precision = precision
        self.batch_size = batch_size
        self.channels_last = True if channels_last is None else channels_last
        if self.channels_last:
            self.network = self.network.to(memory_format=torch.channels_last)

    @classmethod
    def load(
        cls,
        net: str = DEFAULT_LPIPS_NET,
        *,
        weights: str | os.PathLike[str] | None = None,
        device: str | torch.device = DEFAULT_DEVICE,
        random_weights: bool = False,
        precision: str = DEFAULT_PRECISION,
        batch_size: int = 16,
        channels_last: bool | None = None,
        download: bool = False,
    ) -> LPIPSScorer:
        """Build ``lpips.LPIPS(net=net)`` once onto ``device``, eval and inference mode.

        The trunk's ImageNet weights come from ``weights`` (a file) or torchvision's hub
        cache (see :func:`resolve_lpips_weights`); they are loaded without any network
        access. ``random_weights=True`` leaves the trunk randomly initialised from a fixed
        seed (``lpips.LPIPS(pnet_rand=True)``): dry runs and tests only.
        ``channels_last=None`` means on (measured faster on an H100 and on a 16-core CPU).
        """
        lpips = import_optional("lpips")
        dev = resolve_device(device)
        if net not in LPIPS_TRUNK_URLS:
            raise ScorerError(
                f"LPIPS net {net!r} is not supported",
                hint=f"use one of {', '.join(LPIPS_TRUNK_URLS)}",
            )
        resolved = (
            None if random_weights else resolve_lpips_weights(net, weights, download=download)
        )
        network = seeded(
            build_quietly, lpips.LPIPS, net=net, pretrained=True, pnet_rand=True, verbose=False
        )
        if resolved is not None:
            _load_trunk(network, resolved.path, net)
        network = network.to(dev).eval()
        for p in network.parameters():
            p.requires_grad_(False)
        if resolved is None:
            pretrained = RANDOM
        elif resolved.source == "file":
            pretrained = str(resolved.path)
        else:
            pretrained = resolved.path.name
        return cls(
            network=network,
            model=net,
            pretrained=pretrained,
            device=dev,
            weights_path=None if resolved is None else resolved.path,
            weights_identity=RANDOM if resolved is None else sha256_file(resolved.path),
            precision=precision,
            batch_size=batch_size,
            channels_last=channels_last,
        )

    def describe(self) -> str:
        """One line for report headers; says RANDOM WEIGHTS when they are."""
        if self.random_weights:
            weights = RANDOM_WEIGHTS_BANNER
        else:
            weights = f"{self.pretrained} (sha256 {self.weights_identity[:12]})"
        return (
            f"LPIPS: lpips {self.model} / {weights}, {self.device}, "
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
        return f"<LPIPSScorer {self.describe()}>"

    def to_input(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """Same-sized uint8 ``(3, H, W)`` images -> ``(N, 3, H, W)`` float32 in [-1, 1] on the
        device, computed as ``lpips.im2tensor`` does (``x / 127.5 - 1`` in float64, then
        float32)."""
        import torch  # noqa: PLC0415

        batch = stack_on(self.device, images)
        x = (batch.to(torch.float64) / 127.5 - 1.0).to(torch.float32)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def distance(
        self,
        images_a: Sequence[ImageLike],
        images_b: Sequence[ImageLike],
        labels: Sequence[tuple[str, str]] | None = None,
    ) -> list[float]:
        """LPIPS distance of each pair ``(images_a[i], images_b[i])``.

        ``labels[i]`` names the two images of pair ``i`` in errors; a pair of different sizes
        raises :class:`ImageSizeMismatchError` naming both.
        """
        if len(images_a) != len(images_b):
            raise ValueError(f"{len(images_a)} images against {len(images_b)}")
        if labels is not None and len(labels) != len(images_a):
            raise ValueError(f"{len(labels)} label pairs for {len(images_a)} pairs")
        out: list[float] = []
        for start in range(0, len(images_a), self.batch_size):
            stop = start + self.batch_size
            lab = None if labels is None else labels[start:stop]
            out.extend(self._distance_chunk(images_a[start:stop], images_b[start:stop], lab))
        return out

    def _distance_chunk(
        self,
        images_a: Sequence[ImageLike],
        images_b: Sequence[ImageLike],
        labels: Sequence[tuple[str, str]] | None,
    ) -> list[float]:
        import torch  # noqa: PLC0415

        n = len(images_a)
        la: list[str | None] = [p[0] for p in labels] if labels is not None else [None] * n
        lb: list[str | None] = [p[1] for p in labels] if labels is not None else [None] * n
        both = to_uint8_chw_many([*images_a, *images_b], [*la, *lb])
        a, b = both[:n], both[n:]
        groups: dict[tuple[int, int], list[int]] = {}
        for i in range(n):
            sa, sb = tuple(a[i].shape[1:]), tuple(b[i].shape[1:])
            if sa != sb:
                name_a = la[i] or f"image {i} of the first set"
                name_b = lb[i] or f"image {i} of the second set"
                raise ImageSizeMismatchError(
                    f"LPIPS cannot compare {name_a} ({sa[1]}x{sa[0]}) with {name_b} "
                    f"({sb[1]}x{sb[0]}): the sizes differ"
                )
            groups.setdefault((int(sa[0]), int(sa[1])), []).append(i)
        result = torch.empty(n, dtype=torch.float32, device=self.device)
        with precision_scope(self.device, self.precision):
            for idxs in groups.values():
                xa = self.to_input([a[i] for i in idxs])
                xb = self.to_input([b[i] for i in idxs])
                d = self.network(xa, xb).float().reshape(-1)
                if len(idxs) == n:
                    result = d
                else:
                    result[torch.as_tensor(idxs, device=self.device)] = d
        return [float(v) for v in result.cpu().tolist()]

    def distance_one(
        self,
        image_a: ImageLike,
        image_b: ImageLike,
        label_a: str | None = None,
        label_b: str | None = None,
    ) -> float:
        """LPIPS distance of one pair."""
        labels = None
        if label_a is not None or label_b is not None:
            labels = [(label_a or "the first image", label_b or "the second image")]
        return self.distance([image_a], [image_b], labels)[0]

    def reference_distance(self, image_a: ImageLike, image_b: ImageLike) -> float:
        """The library's own path for one pair, strict fp32: ``lpips.im2tensor`` on the HWC
        arrays, then ``lpips.LPIPS.forward``. For checking and the benchmark's naive path."""
        lpips = import_optional("lpips")
        a = to_uint8_chw(image_a).cpu().permute(1, 2, 0).numpy()
        b = to_uint8_chw(image_b).cpu().permute(1, 2, 0).numpy()
        with precision_scope(self.device, "fp32"):
            ta = lpips.im2tensor(a).to(self.device)
            tb = lpips.im2tensor(b).to(self.device)
            return float(self.network(ta, tb).reshape(()))
