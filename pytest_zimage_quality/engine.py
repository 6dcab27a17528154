"""The worker-side machinery of a run: hosts, image cache, queue-ahead runners and scoring.

The engine is built lazily by the first zimage test that runs (never at collection, never for
``--collect-only``). It connects to every host, checks that each config's model files exist on
its server before generating anything, plans the selected cases (and the reference cases they
need) in config order, and hands each test the outcome of its case when it is ready. Tests
only wait; the order images are produced in belongs to the runners.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .cache import ImageCache, cache_key
from .comfyui import GeneratedImage
from .errors import ScorerError, ZImageError
from .images import decode_png, is_blank
from .lane_index import LaneIndex
from .metrics import PromptInfo, ScorerSpec
from .provenance import Lane
from .recheck import Regenerated, choose_recheck
from .scheduler import HostRunner, ImageRequest
from .scoring_worker import Scores, ScoringWorker
from .thumbnails import make_thumbnail, thumbnail_path
from .workflow import graph_hash, model_files

if TYPE_CHECKING:
    from .artifacts import ReportDir
    from .comfyui import ComfyUIClient, Progress, ServerInfo
    from .suite import Case, Suite

__all__ = ["CaseOutcome", "Engine", "EngineSettings"]

log = logging.getLogger(__name__)

#: Every output file of this plugin on a server lives under this subfolder of output/.
SERVER_SUBFOLDER = "zimage-quality"


class _Host(Protocol):
    @property
    def url(self) -> str: ...


class EngineSettings(Protocol):
    """The part of the run's settings the engine reads (the pytest layer's ``Settings`` has it).

    The engine is pipeline, not pytest layer: it takes this view rather than importing the
    option registration that builds it.
    """

    @property
    def hosts(self) -> Sequence[_Host]: ...
    @property
    def headers(self) -> Sequence[tuple[str, str]]: ...
    @property
    def simulated(self) -> bool: ...
    @property
    def refresh(self) -> bool: ...
    @property
    def timeout(self) -> float: ...
    @property
    def queue_depth(self) -> int: ...
    def cache_revision(self, suite: Suite) -> str: ...


@dataclass(frozen=True)
class CaseOutcome:
    """A scored case: its image, where it is stored, its scores, and its reference's outcome."""

    case: Case
    job: ImageRequest = field(repr=False)
    generated: GeneratedImage = field(repr=False)
    image_path: Path
    scores: Scores
    reference: CaseOutcome | None = None

    @property
    def png(self) -> bytes:
        return self.generated.png


class _Slot:
    """Where a test waits for one case."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.outcome: CaseOutcome | None = None
        self.error: ZImageError | None = None


def _safe(text: str) -> str:
    return re.sub(r"[^\w.+-]+", "_", text, flags=re.UNICODE).strip("._") or "suite"


class Engine:
    """Owns the clients, the fake server of a simulated run, the runners and the scorer thread."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        report_dir: ReportDir,
        cache: ImageCache | None,
        client_factory: Callable[[str], ComfyUIClient] | None = None,
    ) -> None:
        self.settings = settings
        self.report_dir = report_dir
        self.cache = cache
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._jobs: dict[tuple[str, str], ImageRequest] = {}
        self._suites: dict[str, Suite] = {}
        self._host_of_config: dict[tuple[str, str], int] = {}
        self._model_ids: dict[tuple[int, str, str], object] = {}
        self._progress: dict[str, str] = {}
        self._lanes: dict[int, Lane] = {}
        #: case key -> (its cache key without the lane, the lane): see lane_index.py
        self._lane_free: dict[tuple[str, str], tuple[str, Lane]] = {}
        #: url -> the raw ``/system_stats`` body at connect (the ComfyUI commit, if reported)
        self.system_stats: dict[str, dict[str, Any]] = {}
        #: the determinism check (``--zimage-refresh`` / ``--zimage-recheck N``): reference
        #: case ids to regenerate, the cache entries they replace, the regenerated pairs
        self._recheck_ids: set[str] = set()
        self._recheck_cached: dict[tuple[str, str], Any] = {}
        self.regenerated: list[Regenerated] = []
        #: notes on cached images from another lane that this run made again
        self.regenerated_other_lane: list[str] = []
        self.notes: queue.Queue[str] = queue.Queue()
        self.fake: Any = None
        self.clients: list[ComfyUIClient] = []
        self.server_infos: list[ServerInfo] = []
        self.runners: list[HostRunner] = []
        self.scoring: ScoringWorker | None = None
        self.started = False
        self.closed = False

    # -- start --------------------------------------------------------------------------
    def start(
        self,
        suites: Sequence[Suite],
        planned: Sequence[Case],
        *,
        before_generating: Callable[[], None] | None = None,
    ) -> None:
        """Connect, check every suite's model files, plan ``planned`` and start generating.

        ``before_generating`` runs after the hosts and their model files check out and before
        anything is submitted (the session checks the scorers' weights there).
        """
        for suite in suites:
            self._suites.setdefault(suite.name, suite)
        urls = [host.url for host in self.settings.hosts]
        if self.settings.simulated:
            urls = [self._start_fake(list(self._suites.values()))]
        for url in urls:
            client = self._make_client(url)
            self.clients.append(client)
            info = client.connect()
            self.server_infos.append(info)
            self.system_stats[info.url] = client.system_stats()
            client.add_progress_listener(self._on_progress)
        self._assign_hosts(planned)
        self._recheck_ids = choose_recheck(
            {case.id if case.is_reference else case.reference_id for case in planned},
            int(getattr(self.settings, "recheck", 0)),
        )
        self._preflight()
        if before_generating is not None:
            before_generating()
        if self.cache is not None:
            self.cache.on_discard = self.notes.put
        if self.settings.refresh:
            for client in self.clients:
                client.free(free_memory=True, unload_models=False)
        self.scoring = ScoringWorker(
            decode=_decode,
            is_blank=is_blank,
            on_scored=self._on_scored,
            on_failed=self._on_failed,
        )
        self.scoring.start()
        threading.Thread(target=_preload_reporting, name="zimage-preload", daemon=True).start()
        self.runners = [
            HostRunner(
                client,
                depth=self.settings.queue_depth,
                timeout=self.settings.timeout,
                deliver=self._deliver,
                fail=self._runner_failed,
                lookup_cache=self._lookup_cache,
            )
            for client in self.clients
        ]
        self.started = True
        self._enqueue(planned)
        for runner in self.runners:
            runner.start()

    def _make_client(self, url: str) -> ComfyUIClient:
        if self._client_factory is not None:
            return self._client_factory(url)
        from .comfyui import ComfyUIClient  # noqa: PLC0415 - httpx/websockets only when used

        return ComfyUIClient(url, headers=self.settings.headers, timeout=self.settings.timeout)

    def _start_fake(self, suites: Sequence[Suite]) -> str:
        from ._fake.fake import FakeComfyUI  # noqa: PLC0415 - Pillow/numpy/aiohttp only here

        graphs = [
            suite.graph_for(suite.make_case(suite.prompts[0].key, config.key, suite.seeds[0]))
            for suite in suites
            for config in suite.configs
        ]
        self.fake = FakeComfyUI(models=FakeComfyUI.models_for_graphs(graphs))
        self.fake.start()
        return str(self.fake.url)

    def _assign_hosts(self, planned: Sequence[Case]) -> None:
        """Pin each config to one host (fewest model loads), balancing cases across hosts."""
        counts: dict[tuple[str, str], int] = {}
        for suite in self._suites.values():
            for config in suite.configs:
                counts[(suite.name, config.key)] = 0
        for case in planned:
            counts[(case.suite, case.config.key)] += 1
        load = [0] * len(self.clients)
        for key, count in sorted(counts.items(), key=lambda kv: -kv[1]):
            host = min(range(len(load)), key=lambda i: load[i])
            self._host_of_config[key] = host
            load[host] += count

    def _preflight(self) -> None:
        """Before any generation: every config's model files (and other choices) exist."""
        for index, client in enumerate(self.clients):
            graphs = {}
            for suite in self._suites.values():
                for config in suite.configs:
                    if self._host_of_config.get((suite.name, config.key), 0) != index:
                        continue
                    case = suite.make_case(suite.prompts[0].key, config.key, suite.seeds[0])
                    label = (
                        config.label if len(self._suites) == 1 else f"{suite.name}/{config.label}"
                    )
                    graphs[f"config {label}"] = suite.graph_for(case)
            if graphs:
                client.check_graphs(graphs)

    # -- planning -----------------------------------------------------------------------
    def _job(self, case: Case) -> ImageRequest:
        suite = self._suites[case.suite]
        base = suite.graph_for(case)
        ghash = graph_hash(base, ignore=[suite.prefix_input])
        prefix = f"{SERVER_SUBFOLDER}/{_safe(suite.name)}/{case.id}-{ghash[:10]}"
        graph = suite.graph_for(case, prefix=prefix)
        host = self._host_of_config.get((suite.name, case.config.key), 0)
        info = self.server_infos[host]
        models = {
            f"{folder}/{name}": self._model_identity(host, folder, name)
            for folder, name in model_files(graph)
        }
        # The lane (GPU, ComfyUI version/commit, torch, CUDA) is in the key: an image cached
        # on another lane is never paired with this run's images; it is generated again.
        lane = self._lane(host, info)
        key = cache_key(
            graph_hash=ghash,
            models=models,
            server=lane.fields,
            revision=self.settings.cache_revision(suite),
        )
        self._lane_free[case.key] = (
            cache_key(
                graph_hash=ghash,
                models=models,
                server={},
                revision=self.settings.cache_revision(suite),
            ),
            lane,
        )
        return ImageRequest(case=case, suite=suite, graph=graph, graph_hash=ghash, cache_key=key)

    def _lane(self, host: int, info: ServerInfo) -> Lane:
        if host not in self._lanes:
            record = {**dataclasses.asdict(info), "gpu_name": info.gpu_name}
            stats = self.system_stats.get(info.url)
            self._lanes[host] = (
                Lane.from_system_stats(stats) if stats else Lane.from_server_record(record)
            )
        return self._lanes[host]

    def _other_lane_note(self, job: ImageRequest) -> None:
        """Say that a cached image from another lane is being made again on this one."""
        if self.cache is None or job.key not in self._lane_free:
            return
        free_key, lane = self._lane_free[job.key]
        other = LaneIndex(self.cache.root).other_lane(free_key, lane)
        if other is not None:
            note = (
                f"{job.case.id}: the cached image was made on another lane ({other.label}); "
                f"regenerated on this run's lane ({lane.label})"
            )
            self.regenerated_other_lane.append(note)
            self.notes.put(note)

    def _model_identity(self, host: int, folder: str, name: str) -> object:
        memo = (host, folder, name)
        if memo not in self._model_ids:
            self._model_ids[memo] = self.clients[host].model_identity(folder, name)
        return self._model_ids[memo]

    def model_identities(self) -> dict[str, dict[str, object]]:
        """Per server url, ``{"folder/file": identity}`` of the model files the run asked
        about (summary.json's provenance)."""
        out: dict[str, dict[str, object]] = {}
        for (host, folder, name), identity in dict(self._model_ids).items():
            out.setdefault(self.clients[host].host, {})[f"{folder}/{name}"] = identity
        return out

    def provide_scorers(self, build: Callable[[], Sequence[ScorerSpec]]) -> None:
        """Build the metrics on this (the main) thread while the server generates, then hand
        them to the scoring thread. Each metric's ``prepare`` sees every prompt here (CLIPScore
        encodes them), so a truncation warning reaches the test that started the run, not a
        background thread."""
        assert self.scoring is not None
        try:
            specs = list(build())
            prompts = [PromptInfo.of(p) for suite in self._suites.values() for p in suite.prompts]
            for spec in specs:
                if spec.prepare is not None:
                    spec.prepare(prompts)
        except ZImageError as exc:
            self.scoring.provide_error(exc)
            raise
        except Exception as exc:  # torch / open_clip failures: one clear error for every case
            error = ScorerError(
                f"building the scorers failed: {type(exc).__name__}: {exc}",
                hint="check --zimage-device and the scorer options; --zimage-device=cpu to compare",
            )
            self.scoring.provide_error(error)
            raise error from exc
        self.scoring.provide(specs)

    def request(self, cases: Iterable[Case]) -> None:
        """Ask for ``cases`` ahead of time (xdist workers look one test ahead)."""
        self._enqueue([case for case in cases if case.suite in self._suites])

    def _enqueue(self, cases: Iterable[Case]) -> None:
        """Plan cases (with the references they need) and hand them to their runners in order."""
        wanted: dict[tuple[str, str], Case] = {}
        for case in cases:
            if not case.is_reference:
                suite = self._suites[case.suite]
                ref = suite.make_case(case.prompt.key, case.reference, case.seed)
                wanted.setdefault(ref.key, ref)
            wanted.setdefault(case.key, case)
        new = []
        with self._lock:
            for key, case in wanted.items():
                if key not in self._jobs:
                    self._jobs[key] = self._job(case)
                    self._slots[key] = _Slot()
                    new.append(self._jobs[key])
        new.sort(key=self._plan_order)
        per_host: dict[int, list[ImageRequest]] = {}
        for job in new:
            host = self._host_of_config.get((job.case.suite, job.case.config.key), 0)
            per_host.setdefault(host, []).append(job)
        for host, jobs in per_host.items():
            self.runners[host].enqueue(jobs)

    def _plan_order(self, job: ImageRequest) -> tuple[int, int, int, int, int]:
        """Suite, then reference config first, then configs in suite order; prompts; seeds."""
        suite = self._suites[job.case.suite]
        suites = list(self._suites)
        configs = [suite.reference, *[c.key for c in suite.candidate_configs]]
        prompts = [p.key for p in suite.prompts]
        seeds = list(suite.seeds)
        return (
            suites.index(suite.name),
            configs.index(job.case.config.key),
            prompts.index(job.case.prompt.key),
            seeds.index(job.case.seed) if job.case.seed in seeds else len(seeds),
            job.case.seed,
        )

    # -- callbacks from runner and scoring threads ---------------------------------------
    def _lookup_cache(self, job: ImageRequest) -> GeneratedImage | None:
        if self.cache is None:
            return None
        if self.settings.refresh or job.case.id in self._recheck_ids:
            # the determinism check: regenerate, and keep what the cache held to compare
            cached = self.cache.get(job.cache_key)
            if cached is not None:
                self._recheck_cached[job.key] = cached
            return None
        hit = self.cache.get(job.cache_key)
        if hit is None:
            self._other_lane_note(job)
            return None
        meta = hit.meta
        return GeneratedImage(
            png=hit.png,
            sha256=hit.sha256,
            prompt_id=str(meta.get("prompt_id", "")),
            host=str(meta.get("host", "")),
            wall_seconds=_float(meta.get("wall_seconds")),
            server_seconds=_float(meta.get("server_seconds")),
            cached="plugin",
        )

    def _deliver(self, job: ImageRequest, generated: GeneratedImage) -> None:
        try:
            if self.cache is not None and generated.cached != "plugin":
                self.cache.put(
                    job.cache_key,
                    generated.png,
                    {
                        "case_id": job.case.id,
                        "suite": job.case.suite,
                        "graph_hash": job.graph_hash,
                        "prompt_id": generated.prompt_id,
                        "host": generated.host,
                        "wall_seconds": generated.wall_seconds,
                        "server_seconds": generated.server_seconds,
                        "created": time.time(),
                    },
                )
                if job.key in self._lane_free:
                    LaneIndex(self.cache.root).record(*self._lane_free[job.key])
            case = job.case
            path = self.report_dir.store_image(
                case.prompt.key, case.config.key, case.seed, generated.sha256, generated.png
            )
        except OSError as exc:
            self._on_failed(
                job,
                ZImageError(
                    f"{job.case.id}: cannot store the image: {exc}",
                    hint="check free disk space and --zimage-report-dir / --zimage-cache-dir",
                ),
            )
            return
        assert self.scoring is not None
        self.scoring.submit(job, generated, path)
        # The report's thumbnail now, while the server works, not at the end of the run.
        make_thumbnail(path, thumbnail_path(self.report_dir.thumbs_dir, generated.sha256))

    def _runner_failed(self, job: ImageRequest, error: ZImageError) -> None:
        self._on_failed(job, error)
        if job.case.is_reference and self.scoring is not None:
            self.scoring.reference_failed(job.key, error)

    def _on_failed(self, job: ImageRequest, error: ZImageError) -> None:
        slot = self._slots[job.key]
        slot.error = error
        slot.event.set()

    def _on_scored(
        self, job: ImageRequest, generated: GeneratedImage, path: Path, scores: Scores
    ) -> None:
        reference = None
        if not job.case.is_reference:
            ref_slot = self._slots.get((job.case.suite, job.case.reference_id))
            reference = ref_slot.outcome if ref_slot is not None else None
        cached = self._recheck_cached.pop(job.key, None)
        if cached is not None:
            self.regenerated.append(
                Regenerated(
                    case_id=job.case.id,
                    prompt=PromptInfo.of(job.case.prompt),
                    cached_png=cached.png,
                    cached_sha256=cached.sha256,
                    new_png=generated.png if generated.sha256 != cached.sha256 else b"",
                    new_sha256=generated.sha256,
                    new_clipscore=scores.clipscore,
                )
            )
        slot = self._slots[job.key]
        slot.outcome = CaseOutcome(
            case=job.case,
            job=job,
            generated=generated,
            image_path=path,
            scores=scores,
            reference=reference,
        )
        slot.event.set()

    def _on_progress(self, progress: Progress) -> None:
        where = f"node {progress.node}"
        if progress.class_type:
            where = f"{progress.class_type} ({where})"
        self._progress[progress.prompt_id] = f"{where} step {progress.value}/{progress.max}"

    # -- what tests call ----------------------------------------------------------------
    def outcome(
        self, case: Case, *, poll: Callable[[str | None], None] | None = None
    ) -> CaseOutcome:
        """Block until ``case`` is generated and scored; raise its ZImageError if it failed."""
        if self.closed:
            raise ZImageError(f"{case.id}: the run is stopping; not generated")
        if case.key not in self._slots:
            if case.suite not in self._suites:
                raise ZImageError(f"{case.id}: suite {case.suite!r} is not part of this run")
            self._enqueue([case])
        slot = self._slots[case.key]
        job = self._jobs[case.key]
        while not slot.event.wait(0.5):
            if poll is not None:
                poll(self._progress.get(job.prompt_id))
        if slot.error is not None:
            raise slot.error
        assert slot.outcome is not None
        return slot.outcome

    def drain_notes(self) -> list[str]:
        notes = []
        while True:
            try:
                notes.append(self.notes.get_nowait())
            except queue.Empty:
                return notes

    @property
    def model_loads(self) -> int | None:
        return None if self.fake is None else int(self.fake.model_loads)

    def close(self, *, cancel: bool) -> None:
        """Stop the runners (cancelling this run's queued prompts), the scorer thread, the clients."""
        if self.closed:
            return
        self.closed = True
        stopped = ZImageError("the run stopped before this case was generated")
        for runner in self.runners:
            try:
                unsent = runner.stop(cancel=cancel)
            except Exception as exc:
                log.warning("zimage: stopping the runner of %s: %s", runner.host, exc)
                continue
            for job in unsent:
                self._on_failed(job, stopped)
        if self.scoring is not None:
            self.scoring.stop()
        for slot in self._slots.values():
            if not slot.event.is_set():
                slot.error = stopped
                slot.event.set()
        for client in self.clients:
            try:
                client.close()
            except Exception as exc:  # closing must never hide the error that got us here
                log.debug("closing %s: %s", client, exc)
        if self.fake is not None:
            try:
                self.fake.stop()
            except Exception as exc:
                log.warning("zimage: stopping the simulated server: %s", exc)


def _preload_reporting() -> None:
    """Import the end-of-run stack (scipy, jinja2) while the server works, not after it."""
    try:
        import jinja2  # noqa: F401, PLC0415

        from . import stats  # noqa: F401, PLC0415
    except ImportError as exc:  # reported properly when the summary needs them
        log.debug("zimage: preloading the report modules failed: %s", exc)


def _decode(data: bytes, name: str) -> Any:
    return decode_png(data, label=name)


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
