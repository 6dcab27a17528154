"""Workflow templating and the canonical graph hash."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_zimage_quality.workflow import InputRef, Workflow, graph_hash, model_files
from tests.helpers import small_workflow

TEXT, SEED, PREFIX = InputRef("27", "text"), InputRef("3", "seed"), InputRef("9", "filename_prefix")


def render(
    workflow: Workflow,
    *,
    text: str = "a cat",
    seed: int = 1,
    prefix: str = "p",
    over: dict[str, Any] | None = None,
) -> dict[str, Any]:
    overrides = {InputRef(*key.split(".")): value for key, value in (over or {}).items()}
    return workflow.render(
        text=(TEXT, text), seed=(SEED, seed), overrides=overrides, prefix=(PREFIX, prefix)
    )


def test_hash_ignores_prefix_and_meta_but_nothing_else() -> None:
    workflow = Workflow(small_workflow())
    base = render(workflow)
    same = render(workflow, prefix="elsewhere/other")
    for node in same.values():
        node.pop("_meta", None)
    assert graph_hash(base, ignore=[PREFIX]) == graph_hash(same, ignore=[PREFIX])
    assert graph_hash(base) != graph_hash(same)
    for changed in (
        render(workflow, text="a dog"),
        render(workflow, seed=2),
        render(workflow, over={"28.unet_name": "z_image_turbo_nvfp4.safetensors"}),
        render(workflow, over={"3.steps": 9}),
    ):
        assert graph_hash(changed, ignore=[PREFIX]) != graph_hash(base, ignore=[PREFIX])


def test_hash_is_independent_of_key_order() -> None:
    workflow = Workflow(small_workflow())
    graph = render(workflow)
    reordered = {key: graph[key] for key in reversed(list(graph))}
    assert graph_hash(graph) == graph_hash(reordered)


def test_model_files_lists_loader_inputs() -> None:
    graph = render(
        Workflow(small_workflow()), over={"30.clip_name": "qwen_3_4b_fp8_mixed.safetensors"}
    )
    assert model_files(graph) == [
        ("diffusion_models", "z_image_turbo_bf16.safetensors"),
        ("text_encoders", "qwen_3_4b_fp8_mixed.safetensors"),
        ("vae", "ae.safetensors"),
    ]


def test_render_does_not_touch_the_template() -> None:
    workflow = Workflow(small_workflow())
    render(workflow, text="changed", seed=99)
    assert workflow.value(TEXT) != "changed"
    assert workflow.value(SEED) == 0


@pytest.mark.parametrize(
    "graph", [{}, [], {"1": {"inputs": {}}}, {"1": {"class_type": "X", "inputs": []}}]
)
def test_non_api_graphs_are_refused(graph: object) -> None:
    from pytest_zimage_quality import SuiteError

    with pytest.raises(SuiteError, match="API"):
        Workflow(graph)  # type: ignore[arg-type]
