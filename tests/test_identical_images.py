"""The run-level check that a server really made different images for different requests."""

from __future__ import annotations

from pytest_zimage_quality.identical_images import identical_images_problem


def test_every_image_the_same_across_prompts_is_a_broken_server() -> None:
    same = "a" * 64
    problem = identical_images_problem([("cat", 1, same), ("dog", 1, same), ("cat", 2, same)])
    assert problem is not None
    assert "byte-identical" in problem
    assert "3 different prompts and seeds" in problem


def test_identical_images_of_one_prompt_and_seed_are_fine() -> None:
    # a candidate config identical to the reference makes the same bytes: not a fault
    assert identical_images_problem([("cat", 1, "a" * 64), ("cat", 1, "a" * 64)]) is None


def test_different_images_are_fine() -> None:
    assert identical_images_problem([("cat", 1, "a" * 64), ("dog", 1, "b" * 64)]) is None
    assert identical_images_problem([]) is None
