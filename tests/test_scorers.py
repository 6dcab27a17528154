"""The scorers against the libraries' own reference paths, on random-initialised networks.

Random weights run exactly the code that pretrained weights run, so "the batched device path
equals open_clip's preprocess + encode_* / lpips.LPIPS.forward" is proven here without any
download. Every test runs on the CPU; where CUDA is available the scorer tests also run on
``cuda`` with the scorers' default numerics (strict fp32).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lpips
import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from pytest_zimage_quality import (
    ImageDecodeError,
    ImageSizeMismatchError,
    ScorerError,
    WeightsNotFoundError,
    ZImageWarning,
)
from pytest_zimage_quality import scorers as scorers_mod
from pytest_zimage_quality.images import encode_png
from pytest_zimage_quality.scorers import (
    RANDOM,
    RANDOM_WEIGHTS_BANNER,
    CLIPScorer,
    LPIPSScorer,
    precision_scope,
    resolve_clip_weights,
    resolve_device,
    resolve_lpips_weights,
    sha256_file,
)

#: These tests build random-initialised networks (seconds each on a CPU): the slow lane.
SLOW = pytest.mark.slow
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
CLIP_TOL = 1e-4
LPIPS_TOL = 1e-5

CHINESE = "古風水墨畫,一位身穿青色長袍的書生站在竹林中"
PROMPTS = [
    "photorealistic portrait of a young woman in a coffee shop",
    "close-up photo of a vintage mechanical pocket watch with intricate gears",
    'wooden storefront sign reading "CLOSED FOR REPAIRS"',
    CHINESE,
]


# ----------------------------------------------------------------------------- test images


def make_image(kind: str, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Structured uint8 (3, H, W) images: the content that stresses resampling and convs."""
    rng = np.random.default_rng(seed + 1000 * h + w)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    if kind == "gradient":
        a = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), (xx + yy) / (h + w)], -1) * 255
    elif kind == "shapes":
        a = np.empty((h, w, 3))
        a[:] = rng.uniform(0, 255, 3)
        for _ in range(12):
            color = rng.uniform(0, 255, 3)
            cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(4, min(h, w) / 3)
            if rng.random() < 0.5:
                mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
            else:
                mask = (abs(yy - cy) < r) & (abs(xx - cx) < r * rng.uniform(0.3, 2))
            a[mask] = color
    elif kind == "text":
        a = np.full((h, w, 3), 235.0)
        for row in range(4, h - 10, 14):
            x = 3
            while x < w - 8:
                gw = int(rng.integers(3, 8))
                if rng.random() < 0.8:
                    a[row : row + 9, x : x + 1] = 20
                    a[row : row + 1, x : x + gw] = 20
                    a[row + 8 : row + 9, x : x + gw] = 20
                    a[row + 4 : row + 5, x : x + gw - 1] = 60
                x += gw + 2
    elif kind == "noise":  # photo-like: smooth field + texture + sensor noise
        coarse = rng.uniform(0, 255, (h // 16 + 2, w // 16 + 2, 3)).astype(np.uint8)
        smooth = np.asarray(
            Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR), dtype=np.float64
        )
        a = smooth + 25 * np.sin(xx / 3.0)[..., None] * np.cos(yy / 5.0)[..., None]
        a += rng.normal(0, 12, a.shape)
    else:
        raise ValueError(kind)
    arr = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


KINDS = ["gradient", "shapes", "text", "noise"]
SIZES = [(224, 224), (256, 256), (300, 257), (200, 360), (383, 512)]


def _image_set(sizes: list[tuple[int, int]]) -> list[tuple[str, torch.Tensor]]:
    out = []
    for i, (h, w) in enumerate(sizes):
        for kind in KINDS:
            out.append((f"{kind}-{h}x{w}", make_image(kind, h, w, seed=i)))
    out.append(("noise-1024x1024", make_image("noise", 1024, 1024, seed=9)))
    return out


#: Every kind at every size, two 1024² renders: for the (cheap) pixel-exactness check.
IMAGES = [*_image_set(SIZES), ("text-1024x1024", make_image("text", 1024, 1024, seed=10))]
#: For the score-level checks: all of IMAGES on a GPU; on a CPU (where the pixel-exactness
#: check above already covers every kind and size) three kinds at a non-square size and one
#: 1024² render, to keep the suite fast.
SCORE_IMAGES = {
    "cpu": [(n, t) for n, t in _image_set([(300, 257)]) if not n.startswith("gradient-")],
    "cuda": IMAGES,
}


def _pil(t: torch.Tensor) -> Image.Image:
    return Image.fromarray(t.permute(1, 2, 0).numpy())


@pytest.fixture(autouse=True)
def _strict_flags_restored() -> Iterator[None]:
    """Every test leaves torch's TF32 flags as it found them."""
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    yield
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def clip_cpu() -> CLIPScorer:
    return CLIPScorer.load(device="cpu", random_weights=True, batch_size=8)


@pytest.fixture(scope="module", params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def clip(device: str, clip_cpu: CLIPScorer) -> CLIPScorer:
    if device == "cpu":
        return clip_cpu
    return CLIPScorer.load(device=device, random_weights=True, batch_size=8)


@pytest.fixture(scope="module")
def lp(device: str) -> LPIPSScorer:
    return LPIPSScorer.load(device=device, random_weights=True, batch_size=8)


@pytest.fixture(scope="module")
def clip_weights_file(clip_cpu: CLIPScorer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The random CLIP weights saved as a plain state-dict file (once: it is 600 MB)."""
    path = tmp_path_factory.mktemp("clip") / "my_clip.bin"
    state = {k: v.detach().cpu().clone() for k, v in clip_cpu.network.state_dict().items()}
    torch.save(state, path)
    return path


class _Strict:
    """Strict IEEE fp32 for the reference path (TF32 off), restored afterwards."""

    def __enter__(self) -> None:
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def __exit__(self, *exc: object) -> None:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved


def _reference_clip(scorer: CLIPScorer) -> tuple[Any, Any, Any]:
    """An independent open_clip model with the scorer's weights, and open_clip's transforms."""
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    model.load_state_dict(scorer.network.state_dict())
    model = model.to(scorer.device).eval()
    return model, preprocess, open_clip.get_tokenizer("ViT-B-32")


def _reference_lpips(scorer: LPIPSScorer) -> Any:
    with warnings.catch_warnings():  # torchvision's 'pretrained' deprecation, twice
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    model.load_state_dict(scorer.network.state_dict())
    return model.to(scorer.device).eval()


# ----------------------------------------------------------------------------- exactness


@SLOW
def test_clip_preprocess_is_pil_exact(clip: CLIPScorer) -> None:
    """The device preprocessing produces open_clip's own preprocess output, pixel for pixel."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    # What create_model_and_transforms returns as the inference transform, built here.
    preprocess = image_transform_v2(
        PreprocessCfg(**clip.network.visual.preprocess_cfg), is_train=False
    )
    names = [n for n, _ in IMAGES]
    got = clip.preprocess([t for _, t in IMAGES], names).cpu()
    for i, (name, t) in enumerate(IMAGES):
        ref = preprocess(_pil(t))
        tol = 0.0 if clip.device.type == "cpu" else 1e-6
        diff = float((got[i] - ref).abs().max())
        assert diff <= tol, f"{name}: preprocess differs from open_clip's by {diff}"


@SLOW
def test_clip_batched_matches_open_clip_reference(clip: CLIPScorer) -> None:
    model, preprocess, tokenizer = _reference_clip(clip)
    images = SCORE_IMAGES[clip.device.type]
    texts = [PROMPTS[i % len(PROMPTS)] for i in range(len(images))]
    got = clip.score([t for _, t in images], texts, [n for n, _ in images])
    worst = 0.0
    text_emb: dict[str, torch.Tensor] = {}
    for (name, t), text, g in zip(images, texts, got, strict=True):
        with _Strict(), torch.no_grad():
            ie = model.encode_image(preprocess(_pil(t)).unsqueeze(0).to(clip.device))
            if text not in text_emb:
                text_emb[text] = model.encode_text(tokenizer([text]).to(clip.device))
            te = text_emb[text]
            ie = ie / ie.norm(dim=-1, keepdim=True)
            te = te / te.norm(dim=-1, keepdim=True)
            ref = float((ie * te).sum())
        worst = max(worst, abs(g - ref))
        assert abs(g - ref) <= CLIP_TOL, f"{name}: {g} vs reference {ref}"
    print(f"CLIPScore max |batched - reference| on {clip.device}: {worst:.2e}")


@SLOW
def test_lpips_batched_matches_lpips_forward(lp: LPIPSScorer) -> None:
    ref_model = _reference_lpips(lp)
    pairs = []
    images = SCORE_IMAGES[lp.device.type]
    if lp.device.type == "cpu":  # no resampling in LPIPS: 1024² only where it is cheap
        images = [(n, t) for n, t in images if t.shape[1] < 1024] + [
            ("shapes-224x224", make_image("shapes", 224, 224))
        ]
    for i, (name, t) in enumerate(images):
        kind = name.split("-")[0]
        if i % 2:  # a different picture: distances 0.15-0.3
            kind = KINDS[(KINDS.index(kind) + 1) % len(KINDS)]
        # else the same kind of picture, another seed: 0-0.25, like near-identical renders
        other = make_image(kind, t.shape[1], t.shape[2], seed=100 + i)
        pairs.append((name, t, other))
    got = lp.distance(
        [p[1] for p in pairs], [p[2] for p in pairs], [(p[0], "other") for p in pairs]
    )
    worst = 0.0
    for (name, a, b), g in zip(pairs, got, strict=True):
        ta = lpips.im2tensor(a.permute(1, 2, 0).numpy()).to(lp.device)
        tb = lpips.im2tensor(b.permute(1, 2, 0).numpy()).to(lp.device)
        with _Strict(), torch.no_grad():
            ref = float(ref_model(ta, tb).reshape(()))
        worst = max(worst, abs(g - ref))
        assert abs(g - ref) <= LPIPS_TOL, f"{name}: {g} vs reference {ref}"
    print(f"LPIPS max |batched - reference| on {lp.device}: {worst:.2e}")


@SLOW
def test_reference_methods_agree_with_fast_path(clip: CLIPScorer, lp: LPIPSScorer) -> None:
    a, b = make_image("shapes", 160, 200, 1), make_image("noise", 160, 200, 2)
    assert abs(clip.reference_score(a, PROMPTS[0]) - clip.score_one(a, PROMPTS[0])) <= CLIP_TOL
    assert abs(lp.reference_distance(a, b) - lp.distance_one(a, b)) <= LPIPS_TOL
    assert lp.distance_one(a, a) == pytest.approx(0.0, abs=1e-6)


# ----------------------------------------------------------------------------- batching


@SLOW
def test_clip_batch_equals_one_by_one(clip: CLIPScorer) -> None:
    # Two of one size (one batched resize) around two of other sizes.
    imgs = [make_image(k, 256, 320, i) for i, k in enumerate(KINDS[:2])]
    imgs[1:1] = [make_image(k, 240 + 8 * i, 300 - 12 * i, i) for i, k in enumerate(KINDS[2:])]
    texts = [PROMPTS[i % 3] for i in range(len(imgs))]
    batched = clip.score(imgs, texts)
    single = [clip.score_one(im, tx) for im, tx in zip(imgs, texts, strict=True)]
    np.testing.assert_allclose(batched, single, atol=CLIP_TOL, rtol=0)


@SLOW
def test_lpips_batch_equals_one_by_one(lp: LPIPSScorer) -> None:
    a = [make_image(k, 128, 160, i) for i, k in enumerate(KINDS * 2)]
    b = [make_image(KINDS[(i + 1) % 4], 128, 160, i + 50) for i in range(len(a))]
    mixed_a = [*a[:5], make_image("text", 96, 96, 1), *a[5:]]
    mixed_b = [*b[:5], make_image("noise", 96, 96, 2), *b[5:]]
    batched = lp.distance(mixed_a, mixed_b)
    single = [lp.distance_one(x, y) for x, y in zip(mixed_a, mixed_b, strict=True)]
    np.testing.assert_allclose(batched, single, atol=LPIPS_TOL, rtol=0)


@SLOW
def test_inputs_as_png_bytes_and_pil_give_the_same_scores(
    clip: CLIPScorer, lp: LPIPSScorer
) -> None:
    a, b = make_image("shapes", 200, 280, 3), make_image("text", 200, 280, 4)
    as_tensor = clip.score([a], PROMPTS[:1])
    assert clip.score([encode_png(a)], PROMPTS[:1]) == as_tensor
    assert clip.score([_pil(a)], PROMPTS[:1]) == as_tensor
    assert lp.distance([encode_png(a)], [_pil(b)]) == lp.distance([a], [b])


# ----------------------------------------------------------------------------- text


@SLOW
def test_text_embedding_computed_once_per_prompt(clip_cpu: CLIPScorer) -> None:
    clip_cpu.clear_text_cache()
    calls: list[int] = []
    original = clip_cpu.network.encode_text

    def counting(tokens: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        calls.append(int(tokens.shape[0]))
        return original(tokens, *args, **kwargs)

    clip_cpu.network.encode_text = counting
    try:
        before = clip_cpu.text_encodes
        texts = ["a cat", "a dog", "a cat", "a dog", "a cat", "a cat"]
        first = clip_cpu.embed_texts(texts)
        assert calls == [2]  # one encoder call holding the two distinct prompts
        second = clip_cpu.embed_texts(texts)
        clip_cpu.embed_texts(["a dog", "a cat"])
        assert calls == [2]
        assert clip_cpu.text_encodes - before == 2
        assert torch.equal(first, second)
        torch.testing.assert_close(first[0], first[2], atol=0, rtol=0)
        clip_cpu.precision = "tf32"  # other numerics: the cached prompts are stale
        clip_cpu.embed_texts(["a cat"])
        assert calls == [2, 1]
        clip_cpu.precision = "fp32"
        clip_cpu.embed_texts(["a cat"])
        assert calls == [2, 1, 1]
        with pytest.raises(ScorerError, match="precision"):
            clip_cpu.precision = "fp16"
    finally:
        del clip_cpu.network.encode_text


@SLOW
def test_long_prompt_is_truncated_with_a_warning_naming_it(clip_cpu: CLIPScorer) -> None:
    clip_cpu.clear_text_cache()
    long_prompt = "a very detailed scene with " + " and ".join(
        f"object number {i}" for i in range(40)
    )
    img = make_image("shapes", 64, 64)
    with pytest.warns(ZImageWarning, match=r"prompt 'photo_long'.*tokens.*77-token context"):
        s = clip_cpu.score([img], [long_prompt], labels=["photo_long"])[0]
    assert np.isfinite(s)
    # Cached: no second warning (filterwarnings=error would turn one into a failure).
    first = clip_cpu.embed_texts([long_prompt], ["photo_long"])
    # What is scored is the truncation open_clip itself does.
    tokens = clip_cpu.tokenizer([long_prompt])
    assert int(tokens[0, -1]) == clip_cpu.tokenizer.eot_token_id
    with torch.inference_mode():
        direct = torch.nn.functional.normalize(clip_cpu.network.encode_text(tokens), dim=-1)
    torch.testing.assert_close(first, direct, atol=1e-6, rtol=0)
    # A prompt that fits does not warn; a label-less long one names itself by its text.
    clip_cpu.embed_texts(["a short prompt"])
    with pytest.warns(ZImageWarning, match=r"^prompt \('another very"):
        clip_cpu.embed_texts(["another very " + long_prompt])


@SLOW
def test_unicode_prompts_work(clip_cpu: CLIPScorer) -> None:
    tokens = clip_cpu.tokenizer([CHINESE])
    assert int((tokens[0] != 0).sum()) > 10  # the characters became tokens, not nothing
    emb = clip_cpu.embed_texts([CHINESE, PROMPTS[0], "🐱 кошка ×"])
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3), atol=1e-5, rtol=0)
    assert not torch.allclose(emb[0], emb[1])
    s_cn = clip_cpu.score_one(make_image("noise", 128, 128), CHINESE, label="chinese")
    assert np.isfinite(s_cn)


# ----------------------------------------------------------------------------- errors


@SLOW
def test_lpips_size_mismatch_names_both_images(lp: LPIPSScorer) -> None:
    a, b = make_image("shapes", 64, 80), make_image("shapes", 80, 64)
    with pytest.raises(ImageSizeMismatchError) as info:
        lp.distance([a, a], [a, b], labels=[("x.png", "y.png"), ("cand-NVFP4.png", "ref-BF16.png")])
    msg = str(info.value)
    assert "cand-NVFP4.png (80x64)" in msg
    assert "ref-BF16.png (64x80)" in msg
    assert "resize" in info.value.hint
    with pytest.raises(ImageSizeMismatchError, match="image 0 of the first set"):
        lp.distance_one(a, b)


@SLOW
def test_corrupt_png_is_a_decode_error_naming_the_image(clip_cpu: CLIPScorer) -> None:
    good = encode_png(make_image("gradient", 32, 32))
    with pytest.raises(ImageDecodeError, match="anime-FP8-s7"):
        clip_cpu.score([good, good[:40]], ["a", "b"], labels=["anime-FP8-s1", "anime-FP8-s7"])


@SLOW
def test_mismatched_lengths_are_refused(clip_cpu: CLIPScorer) -> None:
    img = make_image("gradient", 32, 32)
    with pytest.raises(ValueError, match="texts"):
        clip_cpu.score([img, img], ["one"])
    assert clip_cpu.score([], []) == []


# ----------------------------------------------------------------------------- devices


def test_resolve_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ScorerError, match="no CUDA device") as info:
        resolve_device("cuda")
    assert "cpu" in info.value.hint
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("CUDA:1") == torch.device("cuda", 1)
    with pytest.raises(ScorerError, match=r"sees 2 CUDA device\(s\)"):
        resolve_device("cuda:2")
    for bad in ("tpu", "cuda:x", "gpu0", ""):
        with pytest.raises(ScorerError, match="not a scorer device"):
            resolve_device(bad)


def _flags() -> tuple[bool, bool]:
    return bool(torch.backends.cuda.matmul.allow_tf32), bool(torch.backends.cudnn.allow_tf32)


def test_precision_scope_sets_and_restores_tf32_flags() -> None:
    cuda = torch.device("cuda", 0)  # the flags are plain globals: no GPU needed to set them
    saved = _flags()
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True
        with precision_scope(cuda, "tf32"):
            assert _flags() == (True, True)
            assert torch.is_inference_mode_enabled()
        assert _flags() == (False, True)
        with precision_scope(cuda, "fp32"):
            assert _flags() == (False, False)
        assert _flags() == (False, True)
        with precision_scope(torch.device("cpu"), "tf32"):
            assert _flags() == (False, True)  # CPU: left alone
        with pytest.raises(ScorerError, match="precision"), precision_scope(cuda, "fp16"):
            raise AssertionError("unreachable")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# ----------------------------------------------------------------------------- weights


@SLOW
def test_random_weights_are_labelled_and_reproducible(clip_cpu: CLIPScorer) -> None:
    assert clip_cpu.random_weights
    assert clip_cpu.weights_identity == RANDOM
    assert clip_cpu.pretrained == RANDOM
    assert RANDOM_WEIGHTS_BANNER in clip_cpu.describe()
    assert clip_cpu.info()["random_weights"] is True
    assert clip_cpu.higher_is_better
    assert clip_cpu.name == "CLIPScore"
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    again = LPIPSScorer.load(device="cpu", random_weights=True)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG stream is untouched
    twin = LPIPSScorer.load(device="cpu", random_weights=True)
    for (k, v), (_, w) in zip(
        again.network.state_dict().items(), twin.network.state_dict().items(), strict=True
    ):
        assert torch.equal(v, w), k
    assert not again.higher_is_better
    assert again.name == "LPIPS"
    assert RANDOM_WEIGHTS_BANNER in again.describe()


def test_clip_weights_not_found_names_file_place_and_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        CLIPScorer.load(device="cpu", cache_dir=tmp_path)
    err = info.value
    msg = str(err)
    assert err.filename == "open_clip_pytorch_model.bin"
    assert "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg
    assert str(tmp_path) in msg
    assert any(
        s.startswith(str(tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"))
        for s in err.searched
    )
    assert (
        "hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K open_clip_pytorch_model.bin" in err.hint
    )
    assert "--zimage-clip-pretrained" in err.hint


def test_clip_hf_cache_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(WeightsNotFoundError, match=str(tmp_path / "hub")):
        resolve_clip_weights()
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    with pytest.raises(WeightsNotFoundError, match=str(tmp_path / "home" / "hub")):
        resolve_clip_weights()


def test_clip_openai_weights_on_gelu_model_are_refused() -> None:
    with pytest.raises(ScorerError, match="QuickGELU") as info:
        resolve_clip_weights("ViT-B-32", "openai")
    assert "ViT-B-32-quickgelu" in info.value.hint


def test_clip_unknown_tag_model_or_missing_file() -> None:
    with pytest.raises(ScorerError, match="neither an open_clip pretrained tag") as info:
        resolve_clip_weights("ViT-B-32", "nonsense_tag")
    assert "laion2b_s34b_b79k" in info.value.hint
    with pytest.raises(WeightsNotFoundError, match="not found") as nf:
        resolve_clip_weights("ViT-B-32", "weights/missing.bin")
    assert nf.value.filename.endswith("missing.bin")
    with pytest.raises(ScorerError, match="not an open_clip model"):
        resolve_clip_weights("ViT-Z-99", "laion2b_s34b_b79k")


@SLOW
def test_clip_loads_a_local_weights_file(clip_cpu: CLIPScorer, clip_weights_file: Path) -> None:
    path = clip_weights_file
    loaded = CLIPScorer.load("ViT-B-32", str(path), device="cpu")
    assert not loaded.random_weights
    assert loaded.weights_identity == sha256_file(path)
    assert loaded.pretrained == str(path)
    assert loaded.weights_path == path
    assert RANDOM_WEIGHTS_BANNER not in loaded.describe()
    assert loaded.weights_identity[:12] in loaded.describe()
    mine, theirs = loaded.network.state_dict(), clip_cpu.network.state_dict()
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)


@SLOW
def test_clip_loads_a_tag_from_the_hf_cache(
    clip_cpu: CLIPScorer, clip_weights_file: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    path = repo / "snapshots" / "0123abcd" / "open_clip_pytorch_model.bin"
    path.parent.mkdir(parents=True)
    path.symlink_to(clip_weights_file)  # the hub cache links snapshots to blobs, too
    resolved = resolve_clip_weights(cache_dir=tmp_path)
    assert resolved.path == path
    assert resolved.source == "hf:laion/CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_pytorch_model.bin"
    loaded = CLIPScorer.load(device="cpu", cache_dir=tmp_path)
    assert loaded.pretrained == "laion2b_s34b_b79k"
    assert loaded.weights_identity == sha256_file(path)
    img = make_image("noise", 100, 140)
    assert loaded.score_one(img, "y") == pytest.approx(clip_cpu.score_one(img, "y"), abs=1e-6)
    assert loaded.reference_transform is not None


@SLOW
def test_clip_file_that_is_not_a_checkpoint_is_a_scorer_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.bin"
    torch.save({"not": torch.zeros(1)}, path)
    with pytest.raises(ScorerError, match="could not load"):
        CLIPScorer.load("ViT-S-32", str(path), device="cpu")  # a small model builds faster


def test_lpips_weights_not_found_names_file_place_and_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as info:
        LPIPSScorer.load(device="cpu")
    err = info.value
    checkpoints = tmp_path / "hub" / "checkpoints"
    assert err.filename == "alexnet-owt-7be5be79.pth"
    assert str(checkpoints) in str(err)
    assert err.searched == [str(checkpoints / "alexnet-owt-7be5be79.pth")]
    assert "curl -L -o" in err.hint
    assert "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth" in err.hint
    assert "--zimage-lpips-weights" in err.hint
    with pytest.raises(WeightsNotFoundError, match=r"vgg16-397923af\.pth"):
        resolve_lpips_weights("vgg")
    with pytest.raises(WeightsNotFoundError, match=r"nowhere\.pth"):
        resolve_lpips_weights("alex", tmp_path / "nowhere.pth")
    with pytest.raises(ScorerError, match="not supported"):
        resolve_lpips_weights("squeezenet")


def _alexnet_state(seed: int) -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(seed)
    state: dict[str, torch.Tensor] = torchvision.models.alexnet(weights=None).state_dict()
    return state


@SLOW
def test_lpips_loads_a_local_trunk_file(tmp_path: Path) -> None:
    state = _alexnet_state(5)
    path = tmp_path / "alexnet.pth"
    torch.save(state, path)
    scorer = LPIPSScorer.load(weights=path, device="cpu")
    assert not scorer.random_weights
    assert scorer.weights_identity == sha256_file(path)
    assert scorer.pretrained == str(path)
    assert torch.equal(scorer.network.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(getattr(scorer.network.net.slice5, "10").bias, state["features.10.bias"])
    a, b = make_image("shapes", 96, 96, 1), make_image("text", 96, 96, 2)
    assert abs(scorer.distance_one(a, b) - scorer.reference_distance(a, b)) <= LPIPS_TOL


@SLOW
def test_lpips_trunk_from_torch_home_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    # A file under the real name whose sha256 does not match the name: a partial download.
    torch.save(_alexnet_state(1), checkpoints / "alexnet-owt-7be5be79.pth")
    with pytest.raises(ScorerError, match="corrupt or incomplete") as info:
        LPIPSScorer.load(device="cpu")
    assert "rm " in info.value.hint
    # The cache lookup itself, with a name that carries no hash.
    monkeypatch.setitem(scorers_mod.LPIPS_TRUNK_URLS, "alex", "https://example.invalid/alex-t.pth")
    torch.save(_alexnet_state(2), checkpoints / "alex-t.pth")
    scorer = LPIPSScorer.load(device="cpu")
    assert scorer.pretrained == "alex-t.pth"
    assert scorer.weights_path == checkpoints / "alex-t.pth"


@SLOW
def test_lpips_wrong_file_is_a_scorer_error(clip_weights_file: Path, tmp_path: Path) -> None:
    path = clip_weights_file
    with pytest.raises(ScorerError, match="not torchvision's alex"):
        LPIPSScorer.load(weights=path, device="cpu")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ScorerError, match="cannot read"):
        LPIPSScorer.load(weights=junk, device="cpu")


def test_download_failure_is_translated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def offline(*args: object, **kwargs: object) -> str:
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(WeightsNotFoundError, match=r"could not be downloaded.*unreachable"):
        resolve_clip_weights(cache_dir=tmp_path, download=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsNotFoundError, match="could not be downloaded"):
        resolve_lpips_weights("alex", download=True)


def test_scorers_package_imports_no_pytest() -> None:
    package = Path(scorers_mod.__file__).parent
    modules = [*sorted(package.glob("*.py")), package.parent / "images.py"]
    assert len(modules) > 2
    for path in modules:
        lines = path.read_text(encoding="utf-8").splitlines()
        assert not [ln for ln in lines if re.match(r"\s*(import|from) pytest\b", ln)], path
