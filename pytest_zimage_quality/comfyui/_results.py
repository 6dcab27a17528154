"""The one path from a finished prompt to a verified image.

:meth:`fetch_result` picks the output node's image, fetches it through ``/view`` with the
exact triplet the server named, decodes every pixel and checks that the PNG's embedded graph
is the one submitted. The public ``result``/``generate`` and the scheduler all go through
it, so what counts as a good image is decided here only.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import time
from collections.abc import Mapping
from typing import Any

from ..errors import ComfyUIProtocolError, ImageDecodeError
from ..redaction import sanitize_server_text
from ._core import _ClientCore
from ._events import images_of
from ._http_errors import excerpt
from ._png import png_size, prompt_differences, read_png, requested_size
from ._timeouts import Timeouts
from ._types import FinishedPrompt, GeneratedImage, ImageRef

__all__ = ["check_file_name"]

log = logging.getLogger("pytest_zimage_quality.comfyui")

#: A 500 from /view is often a transient read error on the server: worth one more try.
_VIEW_RETRY_STATUSES = frozenset({500, 502, 503, 504})


class _Results(_ClientCore):
    """Fetch, verify and package the image of a finished prompt."""

    def fetch_image(self, ref: ImageRef, *, max_bytes: int | None = None) -> bytes:
        """The bytes of an output file through ``GET /view`` with its exact triplet.

        The body is streamed under ``max_bytes`` (default: the cap of an image of unknown
        size) and the request's whole deadline; a 5xx is retried like a reset.
        """
        what = f"GET /view {self._shown(ref)}"
        limit = max_bytes if max_bytes is not None else Timeouts.view_limits(None)[1]
        response = self._http.send(
            "GET",
            "/view",
            what=what,
            params=ref.params(),
            limit=limit,
            retry_statuses=_VIEW_RETRY_STATUSES,
        )
        if response.status_code != 200:
            error = self._http.status_error(response, what)
            if response.status_code == 404:
                error.hint = (
                    "the file is gone from the server's output folder (deleted, or "
                    "temp/ was cleared by a restart); rerun the case"
                )
            raise error
        kind = sanitize_server_text(response.headers.get("content-type", ""), 80)
        if kind.startswith(("text/", "application/json")):
            raise ComfyUIProtocolError(
                f"{what}: {self.host} answered {kind}, not an image: {excerpt(response.text, 120)}",
                host=self.host,
            )
        return response.content

    @staticmethod
    def _shown(ref: ImageRef) -> str:
        return sanitize_server_text(str(ref), 300)

    def verify_png(
        self,
        data: bytes,
        *,
        expected_graph: Mapping[str, Any] | None,
        ref: ImageRef | None = None,
        max_pixels: int | None = None,
    ) -> None:
        """Check that ``data`` is a complete PNG and carries the graph that was submitted.

        Every pixel is decoded (:class:`ImageDecodeError` otherwise, naming the ``/view``
        triplet). If the PNG has a tEXt ``prompt`` and ``expected_graph`` is given, they must
        be equal as JSON (titles in ``_meta`` aside), else :class:`ComfyUIProtocolError`.
        An image of more than ``max_pixels`` pixels is refused before decoding.
        """
        what = f"image {self._shown(ref)} from {self.host}" if ref else f"image from {self.host}"
        decoded = read_png(data, what=what, max_pixels=max_pixels)
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
        check_file_name(ref, job.graph, node, host=self.host)
        max_pixels, max_bytes = Timeouts.view_limits(requested_size(job.graph))
        data = self._fetch_verified(ref, job.graph, max_pixels=max_pixels, max_bytes=max_bytes)
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

    def _fetch_verified(
        self,
        ref: ImageRef,
        graph: Mapping[str, Any] | None,
        *,
        max_pixels: int,
        max_bytes: int,
    ) -> bytes:
        """Fetch and verify; bytes that do not decode (truncated, corrupt) are fetched again
        ``retries`` times before the image is refused: a rerun would have passed."""
        attempts = self._timeouts.retries + 1
        for attempt in range(attempts):
            data = self.fetch_image(ref, max_bytes=max_bytes)
            try:
                self.verify_png(data, expected_graph=graph, ref=ref, max_pixels=max_pixels)
            except ImageDecodeError as exc:
                too_large = (size := png_size(data)) is not None and size[0] * size[1] > max_pixels
                if too_large or attempt + 1 >= attempts or self._closed:
                    raise
                log.info("%s; fetching it again", exc.message)
                self._http.sleep(attempt)
                continue
            return data
        raise AssertionError("unreachable")  # pragma: no cover


def check_file_name(
    ref: ImageRef, graph: Mapping[str, Any] | None, node: str, *, host: str
) -> None:
    """The file the server named must carry the ``filename_prefix`` this case submitted.

    The plugin gives every case a unique prefix, so a file under another name is another
    case's image (or the same file for every request: a broken server). A prefix with
    ``%...%`` patterns, or a node without one, is not checked.
    """
    spec = (graph or {}).get(node)
    inputs = spec.get("inputs") if isinstance(spec, Mapping) else None
    prefix = inputs.get("filename_prefix") if isinstance(inputs, Mapping) else None
    if not isinstance(prefix, str) or not prefix or "%" in prefix:
        return
    norm = posixpath.normpath(prefix.replace("\\", "/"))
    folder, stem = posixpath.split(norm)
    subfolder = posixpath.normpath(ref.subfolder.replace("\\", "/")) if ref.subfolder else ""
    if ref.filename.startswith(stem) and subfolder == folder:
        return
    raise ComfyUIProtocolError(
        f"ComfyUI at {host} named the image {sanitize_server_text(str(ref), 300)}, but this "
        f"case asked for files named {prefix!r}*: it is not this case's image",
        host=host,
        hint="the server returned another request's file (a broken or caching proxy, or a "
        "server that answers every request with the same image)",
    )
