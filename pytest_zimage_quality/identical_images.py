"""Is the server making the images it is asked for? Checks over a whole run's images.

A server that answers every request with the same PNG (a broken deployment, a proxy that
caches ``/view``, a stub) would pass every case and the gate with a difference of exactly
zero. One image per (prompt, seed) of a real model differs from every other: when all the
images of a run are byte-identical across different prompts or seeds, the run is broken,
not perfect. :func:`identical_images_problem` says so; the session fails the run with it.

Pure: imports neither pytest nor Pillow.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["identical_images_problem"]


def identical_images_problem(images: Iterable[tuple[str, int, str]]) -> str | None:
    """The message that fails the run, or None when the images can be trusted.

    ``images`` holds (prompt key, seed, sha256) for each image generated or loaded in the
    run. Images of one (prompt, seed) may legitimately be equal across configs (a candidate
    identical to the reference); images of *different* prompts or seeds may not all be.
    """
    pairs: set[tuple[str, int]] = set()
    digests: set[str] = set()
    count = 0
    for prompt, seed, sha256 in images:
        pairs.add((prompt, seed))
        digests.add(sha256)
        count += 1
    if len(pairs) < 2 or len(digests) != 1:
        return None
    (digest,) = digests
    return (
        f"all {count} images of this run are byte-identical (sha256 {digest[:12]}...) across "
        f"{len(pairs)} different prompts and seeds: the server is not generating what it is "
        "asked for (a stub, a proxy caching /view, or a broken workflow), so no score of "
        "this run means anything; check the server and its workflow, then rerun"
    )
