"""A hand-built run for the HTML report's tests: the study's four configs and numbers as
records and a summary, tiny PNGs, a hostile prompt, and an HTML parser that counts what the
page holds. Shared by tests/test_html_report.py, tests/test_report_browser.py and
tests/test_markdown.py."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from PIL import Image

from pytest_zimage_quality.artifacts import ReportDir
from pytest_zimage_quality.records import CaseRecord
from pytest_zimage_quality.settings import HostSpec, Settings
from pytest_zimage_quality.summary import Environment, RunSummary, ServerSummary, build_summary

__all__ = [
    "ENVIRONMENT",
    "HOSTILE",
    "SETTINGS",
    "STUDY_CONFIGS",
    "STUDY_LPIPS",
    "STUDY_MEANS",
    "STUDY_PROMPTS",
    "STUDY_SECONDS",
    "STUDY_SEED42",
    "STUDY_SEEDS",
    "DomCounter",
    "make_records",
    "make_summary",
    "parse",
    "png_bytes",
    "study_scores",
]


HOSTILE = "<script>document.title='PWNED'</script><img src=x onerror=alert(1)>"


#: The study's configs, prompts and numbers (docs/report.md's screenshot is built from these).
STUDY_CONFIGS = (
    ("bf16", "BF16"),
    ("fp8scaled", "FP8scaled"),
    ("nvfp4", "NVFP4"),
    ("nvfp4_fp8e", "NVFP4+FP8e"),
)


STUDY_PROMPTS = (
    ("photo_woman", "photorealistic portrait of a young woman in a coffee shop", ["photo", "easy"]),
    (
        "photo_machine",
        "close-up photo of a vintage mechanical pocket watch with intricate gears",
        ["photo", "dense-detail"],
    ),
    ("anime", "anime style illustration, kimono, cherry blossoms", ["stylized"]),
    ("text_render", 'wooden storefront sign reading "CLOSED FOR REPAIRS"', ["text", "fp4-stress"]),
    ("chinese", "古風水墨畫,一位身穿青色長袍的書生站在竹林中", ["multilingual"]),
    (
        "abstract",
        "surreal floating islands suspended in pastel sky, waterfalls cascading",
        ["abstract"],
    ),
)


#: The study's seed-42 CLIPScores (the image grid).
STUDY_SEED42 = {
    "photo_woman": (0.334, 0.332, 0.319, 0.337),
    "photo_machine": (0.332, 0.329, 0.336, 0.348),
    "anime": (0.307, 0.318, 0.312, 0.299),
    "text_render": (0.348, 0.353, 0.350, 0.351),
    "chinese": (0.260, 0.261, 0.264, 0.266),
    "abstract": (0.408, 0.406, 0.390, 0.384),
}
STUDY_SEEDS = (42, 7777, 12345)


#: Per-prompt mean CLIPScore (the study's breakdown table), configs in STUDY_CONFIGS order.
STUDY_MEANS = {
    "photo_woman": (0.3403, 0.3404, 0.3383, 0.3426),
    "photo_machine": (0.3273, 0.3354, 0.3292, 0.3433),
    "anime": (0.3187, 0.3173, 0.3130, 0.3174),
    "text_render": (0.3628, 0.3656, 0.3642, 0.3623),
    "chinese": (0.2642, 0.2626, 0.2658, 0.2731),
    "abstract": (0.3932, 0.3926, 0.4030, 0.3938),
}


STUDY_LPIPS = {
    "fp8scaled": (0.1670, 0.081),
    "nvfp4": (0.2886, 0.086),
    "nvfp4_fp8e": (0.3069, 0.093),
}


STUDY_SECONDS = {"bf16": 7.55, "fp8scaled": 8.02, "nvfp4": 5.50, "nvfp4_fp8e": 5.52}


def png_bytes(colour: tuple[int, int, int], size: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, "PNG")
    return buffer.getvalue()


def study_scores(prompt: str, config_index: int) -> list[float]:
    """Three seeds whose mean is the study's cell mean and whose first is its seed-42 value."""
    mean, first = STUDY_MEANS[prompt][config_index], STUDY_SEED42[prompt][config_index]
    second = mean + 0.6 * (mean - first) + 0.004 * (config_index - 1.5)
    return [first, second, 3 * mean - first - second]


def make_records(
    report: ReportDir,
    *,
    prompts: Sequence[tuple[str, str, list[str]]] = STUDY_PROMPTS,
    configs: Sequence[tuple[str, str]] = STUDY_CONFIGS,
    seeds: Sequence[int] = STUDY_SEEDS,
    suite: str = "zimage-turbo-quant",
    image: Any = None,
    image_size: int = 24,
) -> list[CaseRecord]:
    """One record per prompt x config x seed, each with a small PNG stored in the report dir.

    ``image(prompt, config, seed)`` may return PNG bytes; by default each case gets its own
    solid colour. Scores follow the study where its prompts and configs are used.
    """
    reference = configs[0][0]
    records = []
    for p_index, (prompt, text, _tags) in enumerate(prompts):
        for c_index, (config, label) in enumerate(configs):
            for s_index, seed in enumerate(seeds):
                if prompt in STUDY_MEANS and c_index < 4 and len(seeds) == 3:
                    score = study_scores(prompt, c_index)[s_index]
                    ref_score = study_scores(prompt, 0)[s_index]
                else:
                    score = 0.30 + 0.01 * ((p_index * 7 + c_index * 3 + s_index) % 9)
                    ref_score = 0.30 + 0.01 * ((p_index * 7 + s_index) % 9)
                colour = ((p_index * 37) % 256, (c_index * 60) % 256, (s_index * 23) % 256)
                data = image(prompt, config, seed) if image else png_bytes(colour, image_size)
                sha = hashlib.sha256(data).hexdigest()
                path = report.store_image(prompt, config, seed, sha, data)
                is_ref = config == reference
                lp = STUDY_LPIPS.get(config, (0.25, 0.05))[0] + 0.01 * (s_index - 1)
                records.append(
                    CaseRecord(
                        suite=suite,
                        case_id=f"{prompt}-{config}-s{seed}",
                        prompt=prompt,
                        prompt_text=text,
                        config=config,
                        config_label=label,
                        seed=seed,
                        reference=reference,
                        role="reference" if is_ref else "candidate",
                        clipscore=score,
                        reference_clipscore=ref_score,
                        delta=None if is_ref else score - ref_score,
                        lpips=None if is_ref else lp,
                        tolerance=0.04,
                        image_path=str(path),
                        image_sha256=sha,
                        width=image_size,
                        height=image_size,
                        wall_seconds=STUDY_SECONDS.get(config, 6.0) + 0.3,
                        server_seconds=STUDY_SECONDS.get(config, 6.0),
                        host="http://gb10:8188",
                        outcome="passed",
                    )
                )
    return records


#: The environment the hand-built runs report (what the session would gather).
ENVIRONMENT = Environment(
    plugin_version="0.1.0",
    python="3.12.1",
    platform="Linux",
    pytest="8.3.0",
    torch="2.5.0",
    device="cuda",
    servers=(
        ServerSummary(
            url="http://gb10:8188",
            comfyui_version="0.3.64",
            gpu_name="NVIDIA GB10",
            pytorch_version="2.8.0",
            os="posix",
        ),
    ),
    scorers={
        "clip": {"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "device": "cuda"},
        "lpips": {"net": "alex", "weights_identity": "lpips-0.1 alex", "device": "cuda"},
    },
)


SETTINGS = Settings(
    hosts=(HostSpec("http://gb10:8188"),),
    headers=(("Authorization", "Bearer t0ken"),),
    report_dir=Path("/home/someone/zr"),
)


def make_summary(
    records: Sequence[CaseRecord],
    *,
    prompts: Sequence[tuple[str, str, list[str]]] = STUDY_PROMPTS,
    banners: Sequence[str] = (),
    gate_passed: bool = True,
) -> RunSummary:
    """The real summary of ``records``, with the suite file's tags and path filled in."""
    summary = build_summary(
        records,
        suites=(),
        settings=SETTINGS,
        environment=ENVIRONMENT,
        run_id="20250101-120000-abcdef",
        created="2025-01-01T12:00:00Z",
    )
    tags = {key: tuple(t) for key, _, t in prompts}
    suites = tuple(
        replace(
            suite,
            path="/home/someone/suites/zimage_turbo.toml",
            sha256="ab" * 32,
            prompts=tuple(replace(p, tags=tags.get(p.key, ())) for p in suite.prompts),
        )
        for suite in summary.suites
    )
    exit_ = replace(
        summary.exit,
        gate_ran=True,
        gate_applied=True,
        gate_passed=gate_passed,
        failed_configs=() if gate_passed else ("NVFP4",),
        reason="" if gate_passed else "non-inferiority not shown for NVFP4",
    )
    return replace(summary, suites=suites, banners=tuple(banners), exit=exit_)


class DomCounter(HTMLParser):
    """Counts elements and keeps text, the way the browser test reads the serialised DOM."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self._stack: list[str] = []
        self.title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._stack and self._stack[-1] == "title":
            self.title += data
        self.text.append(data)

    def find(self, tag: str, css: str | None = None, **attrs: str) -> list[dict[str, str | None]]:
        found = []
        for name, a in self.tags:
            if name != tag:
                continue
            if css is not None and css not in (a.get("class") or "").split():
                continue
            if all(a.get(k.replace("_", "-")) == v for k, v in attrs.items()):
                found.append(a)
        return found

    @property
    def all_text(self) -> str:
        return "".join(self.text)


def parse(text: str) -> DomCounter:
    dom = DomCounter()
    dom.feed(text)
    dom.close()
    return dom
