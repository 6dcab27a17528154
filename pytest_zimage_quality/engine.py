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
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cache import ImageCache
from .case_outcomes import CaseOutcome, CaseSlots
from .comfyui import GeneratedImage
from .dispatch import plan_order
from .engine_settings import EngineSettings
from .errors import ScorerError, ZImageError
from .generation import Generation
from .images import decode_png, is_blank
from .metrics import PromptInfo, ScorerSpec
from .pool import ServerStats
from .recheck import Regenerated, choose_recheck
from .reference_images import reference_wait
from .scheduler import HostRunner, ImageRequest
from .scoring_worker import DEFAULT_MEMORY_BUDGET, Scores, ScoringWorker
from .servers import (
    LaunchedServers,
    PoolServer,
    config_graphs,
    connect_servers,
    preflight,
)
from .thumbnails import make_thumbnail, thumbnail_path

if TYPE_CHECKING:
    from .artifacts import ReportDir
    from .comfyui import ComfyUIClient, Progress, ServerInfo
    from .hardware import HardwareClass
    from .suite import Case, Suite

__all__ = ["CaseOutcome", "Engine", "EngineSettings"]

log = logging.getLogger(__name__)


class Engine:
    """Owns the pool's servers (and those it launched), the runners and the scorer thread."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        report_dir: ReportDir,
        cache: ImageCache | None,
        client_factory: Callable[[str], ComfyUIClient] | None = None,
        estimates: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        self.settings = settings
        self.report_dir = report_dir
        self.cache = cache
        self._client_factory = client_factory
        #: (image seconds, load seconds) per hardware class, from the last run's pool stats
        self.estimates = dict(estimates or {})
        self._lock = threading.Lock()
        self._slots = CaseSlots()
        self._jobs: dict[tuple[str, str], ImageRequest] = {}
        self._suites: dict[str, Suite] = {}
        self._progress: dict[str, str] = {}
        self.notes: queue.Queue[str] = queue.Queue()
        self.fake: Any = None
        #: url -> the raw ``/system_stats`` body at connect (the ComfyUI commit, if reported)
        self.system_stats: dict[str, dict[str, Any]] = {}
        #: the determinism recheck (``--zimage-refresh`` / ``--zimage-recheck N``): the
        #: regenerated pairs (recheck.py scores them)
        self.regenerated: list[Regenerated] = []
        self.launched = LaunchedServers()
        self.servers: list[PoolServer] = []
        self.hardware_classes: list[HardwareClass] = []
        self.generation: Generation | None = None
        self.scoring: ScoringWorker | None = None
        self.started = False
        self.closed = False

    @property
    def clients(self) -> list[ComfyUIClient]:
        return [server.client for server in self.servers]

    @property
    def runners(self) -> list[HostRunner]:
        return [] if self.generation is None else list(self.generation.runners)

    @property
    def server_infos(self) -> list[ServerInfo]:
        return [server.info for server in self.servers]

    # -- start --------------------------------------------------------------------------
    def start(
        self,
        suites: Sequence[Suite],
        planned: Sequence[Case],
        *,
        before_generating: Callable[[], None] | None = None,
    ) -> None:
        """Connect (launching local or Ray servers first), check every config on every
        server, check determinism where a class has several servers, plan ``planned`` over
        the pool and start generating.

        ``before_generating`` runs after the servers and their model files check out and
        before anything is submitted (the session checks the scorers' weights there).
        """
        for suite in suites:
            self._suites.setdefault(suite.name, suite)
        all_suites = list(self._suites.values())
        if self.settings.simulated:
            urls = [self._start_fake(all_suites)]
        else:
            urls = [host.url for host in self.settings.hosts]
            urls += self.launched.start(self.settings, self.report_dir.root / "servers")
        if not urls:
            raise ZImageError(
                "no ComfyUI server to generate on",
                hint="give --zimage-host, --zimage-comfyui or --zimage-ray",
            )
        self.servers, self.hardware_classes = connect_servers(urls, all_suites, self._make_client)
        self.system_stats = {s.url: dict(s.system_stats) for s in self.servers}
        for client in self.clients:
            client.add_progress_listener(self._on_progress)
        preflight(self.servers, all_suites)
        if before_generating is not None:
            before_generating()
        if self.cache is not None:
            self.cache.on_discard = self.notes.put
        if self.settings.refresh:
            for client in self.clients:
                client.free(free_memory=True, unload_models=False)
        budget = getattr(self.settings, "score_memory", None)
        self.scoring = ScoringWorker(
            decode=_decode,
            is_blank=is_blank,
            on_scored=self._on_scored,
            on_failed=self._on_failed,
            memory_budget=DEFAULT_MEMORY_BUDGET if budget is None else int(budget * 2**20),
            reference_wait=reference_wait(self.settings.timeout),
        )
        self.scoring.start()
        threading.Thread(target=_preload_reporting, name="zimage-preload", daemon=True).start()
        self.generation = Generation(
            self.settings,
            all_suites,
            self.servers,
            self.hardware_classes,
            cache=self.cache,
            estimates=self.estimates,
            deliver=self._deliver,
            fail=self._runner_failed,
        )
        self.generation.requests.on_note = self.notes.put
        self.generation.recheck_ids = choose_recheck(
            {case.id if case.is_reference else case.reference_id for case in planned},
            int(getattr(self.settings, "recheck", 0)),
        )
        self.started = True
        self.generation.start(self._new_requests(planned))

    def _make_client(self, url: str) -> ComfyUIClient:
        if self._client_factory is not None:
            return self._client_factory(url)
        from .comfyui import ComfyUIClient  # noqa: PLC0415 - httpx/websockets only when used

        return ComfyUIClient(url, headers=self.settings.headers, timeout=self.settings.timeout)

    def _start_fake(self, suites: Sequence[Suite]) -> str:
        from ._fake.fake import FakeComfyUI  # noqa: PLC0415 - Pillow/numpy/aiohttp only here

        graphs = list(config_graphs(suites).values())
        self.fake = FakeComfyUI(models=FakeComfyUI.models_for_graphs(graphs))
        self.fake.start()
        return str(self.fake.url)

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

    def _new_requests(self, cases: Iterable[Case]) -> list[ImageRequest]:
        """Requests for the cases (with the references they need) not asked for yet, in plan
        order; each gets the slot its test waits on."""
        assert self.generation is not None
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
                    self._jobs[key] = self.generation.requests.request(case)
                    self._slots.add(key)
                    new.append(self._jobs[key])
        return sorted(new, key=plan_order(list(self._suites.values())))

    def _enqueue(self, cases: Iterable[Case]) -> None:
        """Late cases: cache hits delivered, the rest added to the running pool."""
        assert self.generation is not None
        self.generation.add(self._new_requests(cases))

    # -- callbacks from runner and scoring threads
    def _deliver(self, job: ImageRequest, generated: GeneratedImage) -> None:
        assert self.generation is not None
        key = self.generation.requests.cache_key_for(job, generated.host)
        try:
            if self.cache is not None and generated.cached != "plugin" and key is not None:
                self.cache.put(
                    key,
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
                self.generation.requests.stored(job, generated.host)
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
        # From here on the image is read from its file: the bytes are not kept per case.
        self.scoring.submit(job, dataclasses.replace(generated, png=b""), path)
        # The report's thumbnail now, while the server works, not at the end of the run.
        make_thumbnail(path, thumbnail_path(self.report_dir.thumbs_dir, generated.sha256))

    def _runner_failed(self, job: ImageRequest, error: ZImageError) -> None:
        self._on_failed(job, error)

    def _on_failed(self, job: ImageRequest, error: ZImageError) -> None:
        self._slots.fail(job.key, error)
        # Wherever a reference fails (generation, storing, scoring), its parked candidates
        # must hear it at once, not at their deadline.
        if job.case.is_reference and self.scoring is not None:
            self.scoring.reference_failed(job.key, error)

    def _on_scored(
        self, job: ImageRequest, generated: GeneratedImage, path: Path, scores: Scores
    ) -> None:
        reference = None
        if not job.case.is_reference:
            reference = self._slots.outcome_of((job.case.suite, job.case.reference_id))
        assert self.generation is not None
        cached = self.generation.requests.recheck_cached.pop(job.key, None)
        if cached is not None:
            self.regenerated.append(
                Regenerated(
                    case_id=job.case.id,
                    prompt=PromptInfo.of(job.case.prompt),
                    cached_png=cached.png,
                    cached_sha256=cached.sha256,
                    new_png=path.read_bytes() if generated.sha256 != cached.sha256 else b"",
                    new_sha256=generated.sha256,
                    new_clipscore=scores.clipscore,
                )
            )
        self._slots.resolve(
            job.key,
            CaseOutcome(
                case=job.case,
                job=job,
                generated=generated,
                image_path=path,
                scores=scores,
                reference=reference,
            ),
        )

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
        job = self._jobs[case.key]
        if poll is None:
            return self._slots.wait(case.key)
        return self._slots.wait(case.key, poll=lambda: poll(self._progress.get(job.prompt_id)))

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
        if self.generation is not None:
            for job in self.generation.stop(cancel=cancel):
                self._on_failed(job, stopped)
        if self.scoring is not None:
            self.scoring.stop(drop_pending=cancel)
        self._slots.fail_waiting(stopped)
        for client in self.clients:
            try:
                client.close()
            except Exception as exc:  # closing must never hide the error that got us here
                log.debug("closing %s: %s", client, exc)
        self.launched.stop()
        if self.fake is not None:
            try:
                self.fake.stop()
            except Exception as exc:
                log.warning("zimage: stopping the simulated server: %s", exc)

    # -- what reports read --------------------------------------------------------------
    @property
    def regenerated_other_lane(self) -> list[str]:
        """Notes on cached images from another lane that this run made again."""
        return [] if self.generation is None else self.generation.requests.regenerated_other_lane

    def model_identities(self) -> dict[str, dict[str, object]]:
        """Per server url, ``{"folder/file": identity}`` of the run's model files
        (summary.json's provenance)."""
        return {server.url: dict(server.model_ids) for server in self.servers}

    def pool_stats(self) -> list[ServerStats]:
        """What each server did (done, loads, busy seconds, stolen in/out, alive)."""
        return [] if self.generation is None else self.generation.pool_stats()


def _preload_reporting() -> None:
    """Import the end-of-run stack (scipy, jinja2) while the server works, not after it."""
    try:
        import jinja2  # noqa: F401, PLC0415

        from . import stats  # noqa: F401, PLC0415
    except ImportError as exc:  # reported properly when the summary needs them
        log.debug("zimage: preloading the report modules failed: %s", exc)


def _decode(data: bytes, name: str) -> Any:
    return decode_png(data, label=name)
