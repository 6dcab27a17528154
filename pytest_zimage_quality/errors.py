"""The package's one exception tree, and its warning class.

Every failure a user can meet is one of these, carrying the cause in the server's or the
file's own words plus a ``hint`` naming the fix. Foreign errors (httpx, websockets, PIL,
torch, tomllib) are translated where they occur, with ``raise ... from exc``.

    ZImageError
    ├── SuiteError                      the suite file or its workflow template is malformed
    ├── ComfyUIError                    anything that went wrong talking to a ComfyUI host
    │   ├── ComfyUIUnreachableError     connection refused, DNS, TLS, host down
    │   ├── ComfyUIHTTPError            an unexpected HTTP status (5xx, 404, 403, ...)
    │   ├── ComfyUIProtocolError        a reply that does not follow the ComfyUI protocol
    │   ├── WorkflowRejectedError       400 from POST /prompt: the graph failed validation
    │   ├── ModelFilesMissingError      a model file a config names is not on the server
    │   ├── GenerationFailedError       the server raised while running the graph
    │   ├── GenerationInterruptedError  the run was interrupted (by us or someone else)
    │   └── GenerationTimeoutError      no completion within --zimage-timeout
    ├── ImageError                      an image that cannot be used
    │   └── ImageDecodeError            bytes that do not decode as the expected PNG
    └── ScorerError                     a scorer could not be built or run
        ├── WeightsNotFoundError        pretrained weights are not available offline
        └── ImageSizeMismatchError      LPIPS was asked to compare images of different sizes

    ZImageWarning(pytest.PytestWarning)  filterable with ``-W ignore::pytest_zimage_quality.ZImageWarning``

Importing this module does not import pytest: ``ZImageWarning`` lives in ``_warning`` and is
loaded on first access of the name (module ``__getattr__``), so the pure core can use the
error tree outside a pytest run.
"""

from __future__ import annotations

from .redaction import redact

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._warning import ZImageWarning

__all__ = [
    "ComfyUIError",
    "ComfyUIHTTPError",
    "ComfyUIProtocolError",
    "ComfyUIUnreachableError",
    "GenerationFailedError",
    "GenerationInterruptedError",
    "GenerationTimeoutError",
    "ImageDecodeError",
    "ImageError",
    "ImageSizeMismatchError",
    "ModelFilesMissingError",
    "ScorerError",
    "SuiteError",
    "WeightsNotFoundError",
    "WorkflowRejectedError",
    "ZImageError",
    "ZImageWarning",
]


class ZImageError(Exception):
    """Raised for every failure the plugin reports; ``hint`` names the fix."""

    default_hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # The safety net for secrets: whatever text reaches an error (a server's echo, an
        # exception from a library) leaves it with every registered secret redacted, so the
        # terminal, results.jsonl, report.html and JUnit can only get the redacted form.
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hint = redact(self.default_hint if hint is None else hint)

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class SuiteError(ZImageError):
    """Raised when a suite file or its workflow template is malformed (names file and key)."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = path or ""
        if key:
            where = f"{where} [{key}]" if where else f"[{key}]"
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.path = path
        self.key = key


class ComfyUIError(ZImageError):
    """Raised when talking to a ComfyUI host fails; ``host`` is the base URL."""

    def __init__(self, message: str, *, host: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.host = host


class ComfyUIUnreachableError(ComfyUIError):
    """Raised when the host refuses or drops connections, or cannot be resolved."""

    default_hint = (
        "check that ComfyUI is running and listening on that address "
        "(start it with --listen 0.0.0.0 to accept remote clients), or fix --zimage-host"
    )


class ComfyUIHTTPError(ComfyUIError):
    """Raised when the host answers with an HTTP status the protocol does not expect."""

    def __init__(
        self, message: str, *, host: str = "", status: int = 0, hint: str | None = None
    ) -> None:
        super().__init__(message, host=host, hint=hint)
        self.status = status


class ComfyUIProtocolError(ComfyUIError):
    """Raised when a reply is not what the ComfyUI protocol says it should be."""

    default_hint = "is this host a ComfyUI server? the plugin speaks ComfyUI >= 0.3.64"


class WorkflowRejectedError(ComfyUIError):
    """Raised when POST /prompt answers 400: the graph failed the server's validation."""

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        error_type: str = "",
        node_errors: dict[str, object] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, host=host, hint=hint)
        self.error_type = error_type
        self.node_errors = dict(node_errors or {})


class ModelFilesMissingError(ComfyUIError):
    """Raised before any generation when a config names a model file the server lacks."""

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        missing: list[dict[str, str]] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, host=host, hint=hint)
        self.missing = list(missing or [])


class GenerationFailedError(ComfyUIError):
    """Raised when the server reports ``execution_error`` for a submitted graph."""

    def __init__(
        self,
        message: str,
        *,
        host: str = "",
        node_id: str = "",
        node_type: str = "",
        exception_type: str = "",
        hint: str | None = None,
    ) -> None:
        super().__init__(message, host=host, hint=hint)
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type


class GenerationInterruptedError(ComfyUIError):
    """Raised when the server reports ``execution_interrupted`` for a submitted graph."""

    default_hint = "someone (or a stop of this run) interrupted the generation; rerun the case"


class GenerationTimeoutError(ComfyUIError):
    """Raised when a generation does not complete within ``--zimage-timeout`` seconds."""

    default_hint = (
        "raise --zimage-timeout if the server is just slow (model loads can take minutes), "
        "or check the server's console for a hung node"
    )


class ImageError(ZImageError):
    """Raised when an image cannot be used for scoring."""


class ImageDecodeError(ImageError):
    """Raised when bytes that should be a PNG do not decode (truncated, corrupt, wrong type)."""

    default_hint = "the file is corrupt or truncated; regenerate it (rerun with --zimage-refresh)"


class ScorerError(ZImageError):
    """Raised when a scorer cannot be built or run."""


class WeightsNotFoundError(ScorerError):
    """Raised when pretrained weights are needed but not available offline."""

    def __init__(
        self,
        message: str,
        *,
        filename: str = "",
        searched: list[str] | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.filename = filename
        self.searched = list(searched or [])


class ImageSizeMismatchError(ScorerError):
    """Raised when LPIPS is asked to compare two images of different sizes."""

    default_hint = (
        "LPIPS compares images pixel-aligned; make both configs render at the same width "
        "and height (the plugin never resizes silently)"
    )


def __getattr__(name: str) -> object:
    """``ZImageWarning`` on first access: it subclasses a pytest class, so pytest loads then."""
    if name == "ZImageWarning":
        from ._warning import ZImageWarning  # noqa: PLC0415 - pytest only when warning

        return ZImageWarning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
