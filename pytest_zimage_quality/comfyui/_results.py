"""The one path from a finished prompt to a verified image.

:meth:`fetch_result` picks the output node's image, fetches it through ``/view`` with the
exact triplet the server named, decodes every pixel and checks that the PNG's embedded graph
is the one submitted. The public ``result``/``generate`` and the scheduler all go through
it, so what counts as a good image is decided here only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from ..errors import ComfyUIProtocolError
from ._core import _ClientCore
from ._events import images_of
from ._png import prompt_differences, read_png
from ._transport import excerpt
from ._types import FinishedPrompt, GeneratedImage, ImageRef

__all__: list[str] = []


class _Results(_ClientCore):
    """Fetch, verify and package the image of a finished prompt."""

    def fetch_image(self, ref: ImageRef) -> bytes:
        """The bytes of an output file through ``GET /view`` with its exact triplet."""
        what = f"GET /view {ref}"
        response = self._http.send("GET", "/view", what=what, params=ref.params())
        if response.status_code != 200:
            error = self._http.status_error(response, what)
            if response.status_code == 404:
                error.hint = (
                    "the file is gone from the server's output folder (deleted, or "
                    "temp/ was cleared by a restart); rerun the case"
                )
            raise error
        kind = response.headers.get("content-type", "")
        if kind.startswith(("text/", "application/json")):
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered {kind}, not an image: {excerpt(response.text, 120)}",
                host=self.host,
            )
        return response.content

    def verify_png(
        self,
        data: bytes,
        *,
        expected_graph: Mapping[str, Any] | None,
        ref: ImageRef | None = None,
    ) -> None:
        """Check that ``data`` is a complete PNG and carries the graph that was submitted.

        Every pixel is decoded (:class:`ImageDecodeError` otherwise, naming the ``/view``
        triplet). If the PNG has a tEXt ``prompt`` and ``expected_graph`` is given, they must
        be equal as JSON (titles in ``_meta`` aside), else :class:`ComfyUIProtocolError`.
        """
        what = f"image {ref} from {self.host}" if ref else f"image from {self.host}"
        decoded = read_png(data, what=what)
        embedded = decoded.text.get("prompt")
        if embedded is None or expected_graph is None:
            return
        diffs = prompt_differences(embedded, expected_graph)
        if diffs is None:
            raise ComfyUIProtocolError(
                f"{what}: its 'prompt' metadata is not a JSON graph", host=self.host
            )
        if diffs:
            raise ComfyUIProtocolError(
                f"{what} was made from another graph than the one submitted:\n  "
                + "\n  ".join(diffs),
                host=self.host,
                hint="another client may have written the same output file; give each case "
                "a unique filename_prefix",
            )

    def fetch_result(
        self, finished: FinishedPrompt, *, output_node: str | None = None
    ) -> GeneratedImage:
        """Fetch and verify the image of a finished prompt: the one path to a
        :class:`GeneratedImage`, used by :meth:`result` and by the scheduler.

        ``output_node`` defaults to the one given to :meth:`submit`, else the only output
        node that produced images. ``wall_seconds`` counts from the submit.
        """
        prompt_id = finished.prompt_id
        with self._cond:
            job = self._jobs[prompt_id]
        node = output_node or job.output_node
        outputs = dict(finished.outputs)
        if node is None and len(outputs) == 1:
            node = next(iter(outputs))
        if node is None:
            raise ValueError(
                f"prompt {prompt_id} has images from several nodes {sorted(outputs)}; "
                "name the output_node"
            )
        if not outputs.get(node):
            entry = self._history_entry(prompt_id)
            if entry is not None:
                outputs.update(
                    (str(k), images_of(v))
                    for k, v in (entry.get("outputs") or {}).items()
                    if images_of(v)
                )
        refs = outputs.get(node)
        if not refs:
            raise ComfyUIProtocolError(
                f"ComfyUI at {self.host} finished prompt {prompt_id} without an image from "
                f"output node {node} (images came from nodes {sorted(outputs) or 'none'})",
                host=self.host,
                hint="the output node must be a SaveImage or PreviewImage node",
            )
        ref = refs[0]
        data = self.fetch_image(ref)
        self.verify_png(data, expected_graph=job.graph, ref=ref)
        return GeneratedImage(
            png=data,
            sha256=hashlib.sha256(data).hexdigest(),
            prompt_id=prompt_id,
            host=self.host,
            wall_seconds=time.monotonic() - job.submitted_at,
            server_seconds=finished.server_seconds,
            cached="server" if node in finished.cached_nodes else "",
            image_ref=ref,
        )
