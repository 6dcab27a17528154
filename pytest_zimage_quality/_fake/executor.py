"""The prompt queue and its single worker thread, after ComfyUI's ``PromptQueue``,
``PromptExecutor`` and ``main.prompt_worker``.

This is where the protocol's timing-sensitive behaviour lives: the WebSocket message order of a
run, the server-wide node output cache (an identical resubmission replays ``executed`` with the
original filenames and writes nothing), history written before ``executing(null)`` but after
``execution_success``, interrupts landing at node boundaries and progress ticks, and ``/free``
acted on between jobs. It also simulates time (per-image latency, model-load latency when the
loaded model set changes) and counts what a benchmark needs.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import json
import random
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image

from .compat import VersionProfile
from .faults import ExecutionFailure, Faults, ImageFault, RunInfo
from .files import FileStore
from .graph import DependencyCycleError, ExecutionList, is_link, node_signatures
from .hostile import pixel_bomb_png
from .models import SAMPLING_BYTES_PER_IMAGE, ModelRegistry
from .nodes import LOADER_INPUTS, NodeCatalog
from .render import Scene, encode_png
from .runtime import ImageBatch, Interrupted, NodeFailure, is_changed, random_temp_suffix, run_node

__all__ = ["BusyInterval", "Executor", "Outbox", "PromptQueue", "QueueItem", "RunRecord"]

_MODEL_TYPES = frozenset({"MODEL", "CLIP", "VAE"})
_FAKE_TRACEBACK = [
    '  File "ComfyUI/execution.py", line 534, in execute\n',
    '  File "ComfyUI/execution.py", line 334, in get_output_data\n',
    '  File "ComfyUI/execution.py", line 308, in _async_map_node_over_list\n',
    '  File "ComfyUI/execution.py", line 296, in process_inputs\n',
]


class Outbox(Protocol):
    """Where the executor's WebSocket traffic goes (the server's publish queue)."""

    def send_json(self, event: str, data: dict[str, Any], sid: str | None) -> None: ...

    def send_bytes(self, frame: bytes, sid: str | None) -> None: ...

    def drop(self, sid: str | None) -> None: ...

    def bomb(self, sid: str | None, inflated_size: int) -> None: ...

    def supports_preview_metadata(self, sid: str | None) -> bool: ...


class _NullOutbox:
    def send_json(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        pass

    def send_bytes(self, frame: bytes, sid: str | None) -> None:
        pass

    def drop(self, sid: str | None) -> None:
        pass

    def bomb(self, sid: str | None, inflated_size: int) -> None:
        pass

    def supports_preview_metadata(self, sid: str | None) -> bool:
        return False


@dataclass
class QueueItem:
    """``(number, prompt_id, prompt, extra_data, outputs_to_execute, sensitive)``."""

    number: float
    prompt_id: str
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    outputs: list[str]
    sensitive: dict[str, Any] = field(default_factory=dict)

    def public(self) -> list[Any]:
        """The 5-element list /queue and /history show (no sensitive data)."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


@dataclass(frozen=True)
class BusyInterval:
    """A span of simulated server work, in ``time.monotonic()`` seconds.

    ``kind`` is ``"run"`` (one prompt, start to ``executing(null)``), ``"load"`` (a model load)
    or ``"generate"`` (sampling); loads and generations lie inside their run.
    """

    start: float
    end: float
    kind: Literal["run", "load", "generate"]
    prompt_id: str


@dataclass(frozen=True)
class RunRecord:
    """What one executed prompt did, for assertions."""

    prompt_id: str
    number: float
    #: ``lost``: a simulated restart killed it (no history entry, no more frames)
    status: Literal["success", "error", "interrupted", "lost"]
    cached_nodes: tuple[str, ...]
    executed_nodes: tuple[str, ...]
    outputs: dict[str, Any]
    model_files: tuple[str, ...]
    images_generated: int
    model_loaded: bool
    start: float
    end: float

    @property
    def fully_cached(self) -> bool:
        """Nothing ran: every output came from the node cache."""
        return not self.executed_nodes and self.status == "success"


class PromptQueue:
    """Heap of pending items, the running one, history and the /free flags."""

    def __init__(self, on_update: Callable[[], None]) -> None:
        self.mutex = threading.RLock()
        self.not_empty = threading.Condition(self.mutex)
        self.on_update = on_update
        self.heap: list[tuple[float, str, int, QueueItem]] = []
        self.running: dict[int, QueueItem] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.flags: dict[str, Any] = {}
        self._task_counter = 0
        self._seq = itertools.count()
        self.stopped = False
        #: bumped by a simulated restart: work taken before it is lost
        self.epoch = 0

    def put(self, item: QueueItem) -> None:
        with self.mutex:
            heapq.heappush(self.heap, (item.number, item.prompt_id, next(self._seq), item))
            self.on_update()
            self.not_empty.notify()

    def get(
        self, timeout: float, held: Callable[[QueueItem], bool] | None = None
    ) -> tuple[QueueItem, int, int] | None:
        """The next ``(item, index, epoch)``, unless the queue is empty or ``held(head)`` keeps it pending."""
        with self.not_empty:
            if not self.heap and not self.stopped:
                self.not_empty.wait(timeout=timeout)
            if not self.heap or self.stopped:
                return None
            if held is not None and held(self.heap[0][3]):
                self.not_empty.wait(timeout=timeout)
                return None
            item = heapq.heappop(self.heap)[3]
            index = self._task_counter
            self._task_counter += 1
            self.running[index] = item
            self.on_update()
            return item, index, self.epoch

    def task_done(self, index: int, history_entry: dict[str, Any], epoch: int) -> None:
        with self.mutex:
            if epoch != self.epoch:  # lost in a restart: no history
                return
            item = self.running.pop(index)
            if len(self.history) > 10000:
                self.history.pop(next(iter(self.history)))
            self.history[item.prompt_id] = history_entry
            self.on_update()

    def remaining(self) -> int:
        with self.mutex:
            return len(self.heap) + len(self.running)

    def snapshot(self) -> tuple[list[list[Any]], list[list[Any]]]:
        """(running, pending) as JSON-ready 5-element lists; pending in heap order."""
        with self.mutex:
            running = [copy.deepcopy(item.public()) for item in self.running.values()]
            pending = [copy.deepcopy(entry[3].public()) for entry in self.heap]
            return running, pending

    def running_ids(self) -> list[str]:
        with self.mutex:
            return [item.prompt_id for item in self.running.values()]

    def wipe(self) -> None:
        with self.mutex:
            self.heap = []
            self.on_update()

    def delete(self, prompt_id: str) -> bool:
        with self.mutex:
            for index, entry in enumerate(self.heap):
                if entry[3].prompt_id == prompt_id:
                    if len(self.heap) == 1:
                        self.wipe()
                    else:
                        self.heap.pop(index)
                        heapq.heapify(self.heap)
                    self.on_update()
                    return True
        return False

    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        with self.mutex:
            if prompt_id is not None:
                if prompt_id in self.history:
                    return {prompt_id: copy.deepcopy(self.history[prompt_id])}
                return {}
            out: dict[str, Any] = {}
            if offset < 0 and max_items is not None:
                offset = len(self.history) - max_items
            for i, (key, entry) in enumerate(self.history.items()):
                if i >= offset:
                    out[key] = copy.deepcopy(entry)
                    if max_items is not None and len(out) >= max_items:
                        break
            return out

    def wipe_history(self) -> None:
        with self.mutex:
            self.history = {}

    def delete_history(self, prompt_id: str) -> None:
        with self.mutex:
            self.history.pop(prompt_id, None)

    def set_flag(self, name: str, value: Any) -> None:
        with self.mutex:
            self.flags[name] = value
            self.not_empty.notify()

    def take_flags(self) -> dict[str, Any]:
        with self.mutex:
            flags, self.flags = self.flags, {}
            return flags

    def stop(self) -> None:
        with self.mutex:
            self.stopped = True
            self.not_empty.notify_all()

    def reset(self) -> None:
        """A restart: pending, running, history and flags are gone."""
        with self.mutex:
            self.epoch += 1
            self.heap = []
            self.running = {}
            self.history = {}
            self.flags = {}
            self.on_update()


@dataclass
class _CacheEntry:
    ui: dict[str, Any] | None
    outputs: tuple[Any, ...]


class _Progress:
    """ComfyUI's per-prompt ProgressRegistry: node states sent as ``progress_state``."""

    def __init__(self, prompt_id: str) -> None:
        self.prompt_id = prompt_id
        self.nodes: dict[str, dict[str, Any]] = {}

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self.nodes.setdefault(node_id, {"state": "pending", "value": 0, "max": 1})

    def start(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="running", value=0.0, max=1.0)

    def update(self, node_id: str, value: float, total: float) -> None:
        entry = self._entry(node_id)
        entry.update(state="running", value=value, max=total)

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])

    def message(self) -> dict[str, Any]:
        nodes = {
            node_id: {
                "value": state["value"],
                "max": state["max"],
                "state": state["state"],
                "node_id": node_id,
                "prompt_id": self.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            for node_id, state in self.nodes.items()
            if state["state"] != "pending"
        }
        return {"prompt_id": self.prompt_id, "nodes": nodes}


def _format_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, bool, str)):
        return value
    return str(value)


def _reachable(prompt: dict[str, Any], outputs: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    stack = list(outputs)
    while stack:
        node_id = stack.pop()
        if node_id in seen or node_id not in prompt:
            continue
        seen[node_id] = None
        for value in prompt[node_id].get("inputs", {}).values():
            if is_link(value):
                stack.append(value[0])
    return [node_id for node_id in prompt if node_id in seen]


def loader_files(prompt: dict[str, Any], node_ids: Iterable[str]) -> tuple[str, ...]:
    """Model files named by the loader nodes among ``node_ids`` (built-in VAEs excluded)."""
    files: dict[str, None] = {}
    for node_id in node_ids:
        node = prompt.get(node_id)
        if not isinstance(node, dict):
            continue
        for name, value in node.get("inputs", {}).items():
            folder = LOADER_INPUTS.get((node.get("class_type", ""), name))
            if folder is not None and isinstance(value, str) and value != "pixel_space":
                files.setdefault(value, None)
    return tuple(files)


class _Run:
    """One prompt's execution: the NodeContext the node functions see."""

    def __init__(self, executor: Executor, item: QueueItem, epoch: int) -> None:
        self.ex = executor
        self.item = item
        self.epoch = epoch
        self.image_faults: list[ImageFault] = []
        self.info: RunInfo | None = None
        self.prompt = item.prompt
        self.prompt_id = item.prompt_id
        self.extra_data = {**item.extra_data, **item.sensitive}
        self.client_id: str | None = self.extra_data.get("client_id")
        self.node_id = ""
        self.progress_state = _Progress(item.prompt_id)
        self.messages: list[list[Any]] = []
        self.images_generated = 0
        self.waited = 0.0  # simulated time: sampling sleeps and model loads
        self.model_loaded = False
        self._last_sent_value = -1.0
        self._last_update = 0.0
        self.drop_after: int | None = None
        self.frames_sent = 0
        reachable = _reachable(item.prompt, item.outputs)
        self.model_files = loader_files(item.prompt, reachable)

    # -- messages ---------------------------------------------------------------------------

    @property
    def lost(self) -> bool:
        """A simulated restart happened since this run was taken: it sends nothing more."""
        return self.epoch != self.ex.queue.epoch

    def send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        if self.lost:
            return
        self.ex.outbox.send_json(event, data, sid)
        self._count_frame(sid)

    def send_bytes(self, frame: bytes, sid: str | None) -> None:
        if self.lost:
            return
        self.ex.outbox.send_bytes(frame, sid)
        self._count_frame(sid)

    def _count_frame(self, sid: str | None) -> None:
        if self.drop_after is None or (sid is not None and sid != self.client_id):
            return
        self.frames_sent += 1
        if self.frames_sent >= self.drop_after:
            self.ex.outbox.drop(self.client_id)
            self.drop_after = None

    def add_message(self, event: str, data: dict[str, Any], *, broadcast: bool) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        self.messages.append([event, data])
        if self.client_id is not None or broadcast:
            self.send(event, data, self.client_id)

    def send_progress_state(self) -> None:
        self.send("progress_state", self.progress_state.message(), self.client_id)

    # -- NodeContext --------------------------------------------------------------------------

    def check_interrupt(self) -> None:
        if self.ex.interrupt_flag.is_set():
            raise Interrupted("Processing interrupted")

    def progress(self, value: int, total: int, preview: bytes | None = None) -> None:
        self.check_interrupt()
        if self.ex.profile.throttles_progress and preview is None:
            now = time.perf_counter()
            first = self._last_sent_value < 0
            final = value >= total
            if not (first or final):
                changed = (value - max(0.0, self._last_sent_value)) / total * 100 if total else 100
                if now - self._last_update < 0.1 or changed < 0.5:
                    return
            self._last_update = now
        self._last_sent_value = value
        self.progress_state.update(self.node_id, value, total)
        self.send_progress_state()
        metadata = preview is not None and self.ex.outbox.supports_preview_metadata(self.client_id)
        if preview is not None and metadata:
            meta = json.dumps(
                {
                    "node_id": self.node_id,
                    "prompt_id": self.prompt_id,
                    "display_node_id": self.node_id,
                    "parent_node_id": None,
                    "real_node_id": self.node_id,
                    "image_type": "image/png",
                }
            ).encode("utf-8")
            self.send_bytes(struct.pack(">II", 4, len(meta)) + meta + preview, self.client_id)
        self.send(
            "progress",
            {"value": value, "max": total, "prompt_id": self.prompt_id, "node": self.node_id},
            self.client_id,
        )
        if preview is not None and not metadata:
            self.send_bytes(struct.pack(">II", 1, 2) + preview, self.client_id)

    def sample(self, steps: int, images: int) -> None:
        # ``image_latency`` is the whole time an image takes, as on a real server: the fake's
        # own work on a run (rendering, PNG encoding, messages) is taken out of the sleep.
        latency = self.ex.image_latency * self.ex.speed_factor
        own = self.ex.own_time_per_image * images if latency > 0 else 0.0
        total = max(0.0, latency * images - own) + self.ex.faults.take_generation_stall(self.info)
        per_step = total / max(1, steps)
        start = self.ex.clock()
        self.ex.sampling_images = images
        try:
            for step in range(1, steps + 1):
                if per_step > 0:
                    self.ex.interrupt_flag.wait(per_step)
                self.progress(step, steps)
        finally:
            self.ex.sampling_images = 0
            end = self.ex.clock()
            self.waited += end - start
            self.ex.add_interval(start, end, "generate", self.prompt_id)
        self.images_generated += images
        self.ex.count_generation(images)

    def pixel_work(self, pixels: int, ticks: int = 0) -> None:
        total = self.ex.pixel_latency * pixels / 1e6
        if ticks <= 0:
            if total > 0:
                time.sleep(total)
            return
        start = time.monotonic()
        last_sent = -1.0
        for tick in range(1, ticks + 1):
            left = start + total * tick / ticks - time.monotonic()
            if left > 0:
                self.ex.interrupt_flag.wait(left)
            self.check_interrupt()
            now = time.monotonic()
            # A CPU-bound real server manages about a thousand ticks a second; sending more
            # would only starve the event loop (first and last ticks always go out).
            if ticks <= 100 or tick in (1, ticks) or now - last_sent >= 0.001:
                last_sent = now
                self.progress(tick, ticks)

    def scene(self, text: str, seed: int, width: int, height: int, files: tuple[str, ...]) -> Scene:
        return self.ex.models.scene(text, seed, width, height, files)

    def save_images(
        self, kind: Literal["output", "temp"], prefix: str, images: ImageBatch, *, metadata: bool
    ) -> list[dict[str, str]]:
        text: dict[str, str] | None = None
        if metadata and not self.ex.disable_metadata:
            text = {"prompt": json.dumps(self.prompt)}
            for key, value in (self.extra_data.get("extra_pnginfo") or {}).items():
                text[key] = json.dumps(value)
        pngs = [encode_png(images.pixels(i), text) for i in range(images.count)]
        for fault in self.image_faults:
            prefix, pngs = _apply_image_fault(fault, prefix, images, pngs)
        try:
            return self.ex.files.save(kind, prefix, pngs)
        except ValueError as exc:
            raise NodeFailure("Exception", str(exc)) from exc

    def temp_prefix(self) -> str:
        key = (self.node_id, self.prompt[self.node_id]["class_type"])
        if key not in self.ex.objects:
            self.ex.objects[key] = random_temp_suffix(self.ex.rng)
        return self.ex.objects[key]


def _apply_image_fault(
    fault: ImageFault, prefix: str, images: ImageBatch, pngs: list[bytes]
) -> tuple[str, list[bytes]]:
    """What SaveImage writes under an image fault (see ``Faults.wrong_image_size`` etc.)."""
    if fault.kind == "filename":
        return fault.prefix, pngs
    if fault.kind == "bomb":
        return prefix, [pixel_bomb_png(fault.width)] * len(pngs)
    if fault.kind == "same":
        if "png" not in fault.memo:
            fault.memo["png"] = encode_png(images.pixels(0))  # no text chunks: no metadata
        return prefix, [fault.memo["png"]] * len(pngs)
    resized = []
    for index in range(images.count):
        image = Image.fromarray(images.pixels(index)).resize((fault.width, fault.height))
        resized.append(encode_png(np.asarray(image)))
    return prefix, resized


class Executor:
    """Owns the queue, the worker thread, the node cache and the simulated clock."""

    def __init__(
        self,
        *,
        catalog: NodeCatalog,
        profile: VersionProfile,
        models: ModelRegistry,
        files: FileStore,
        faults: Faults,
        image_latency: float = 0.0,
        load_latency: float = 0.0,
        pixel_latency: float = 0.0,
        speed_factor: float = 1.0,
        disable_metadata: bool = False,
        record_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.catalog = catalog
        #: multiplies image_latency: one fake of a pool can be slower than the others
        self.speed_factor = speed_factor
        #: images the running sampler holds (their working set counts as VRAM in use)
        self.sampling_images = 0
        #: the status-frame interval while hold_queue keeps the head prompt pending
        self.held_status_every: float | None = None
        self._applied_epoch = 0
        self.profile = profile
        self.models = models
        self.files = files
        self.faults = faults
        self.image_latency = image_latency
        self.load_latency = load_latency
        #: running estimate of the fake's own seconds per image, taken out of image_latency
        self.own_time_per_image = 0.0
        self.pixel_latency = pixel_latency
        self.disable_metadata = disable_metadata
        self.record_error = record_error or (lambda exc: None)
        self.outbox: Outbox = _NullOutbox()
        self.clock: Callable[[], float] = time.monotonic
        self.queue = PromptQueue(self._queue_updated)
        self.interrupt_flag = threading.Event()
        self.rng = random.Random()
        self.cache: dict[str, _CacheEntry] = {}
        self.objects: dict[tuple[str, str], str] = {}
        #: sid of the running (or last) job's client, and its current node: for reconnects
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self._stats_lock = threading.Lock()
        self._generations = 0
        self._model_loads = 0
        self._unloads = 0
        self._runs: list[RunRecord] = []
        self._timeline: list[BusyInterval] = []
        self._current: _Run | None = None
        self._idle = threading.Condition(threading.Lock())
        self._busy = False
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- statistics ---------------------------------------------------------------------------

    def add_interval(
        self, start: float, end: float, kind: Literal["run", "load", "generate"], prompt_id: str
    ) -> None:
        with self._stats_lock:
            self._timeline.append(BusyInterval(start, end, kind, prompt_id))

    def vram_in_use(self) -> int:
        """Bytes torch would hold: loaded model files plus the running sampler's working set."""
        return self.models.loaded_bytes() + self.sampling_images * SAMPLING_BYTES_PER_IMAGE

    def reset(self) -> None:
        """A simulated restart: everything queued, running or remembered is lost."""
        self.queue.reset()
        self.models.loaded = frozenset()
        if self._current is not None:
            self.interrupt_flag.set()

    def _apply_restart(self) -> None:
        """In the worker thread: drop the node cache once a restart has happened."""
        epoch = self.queue.epoch
        if epoch != self._applied_epoch:
            self._applied_epoch = epoch
            self.cache = {}
            self.objects = {}
            self.models.loaded = frozenset()
            self.client_id = None
            self.last_node_id = None

    def count_generation(self, images: int) -> None:
        with self._stats_lock:
            self._generations += images

    def stats(self) -> tuple[int, int, int, list[RunRecord], list[BusyInterval]]:
        with self._stats_lock:
            return (
                self._generations,
                self._model_loads,
                self._unloads,
                list(self._runs),
                list(self._timeline),
            )

    # -- queue --------------------------------------------------------------------------------

    def _queue_updated(self) -> None:
        data = {"status": {"exec_info": {"queue_remaining": self.queue.remaining()}}}
        current = self._current
        if current is not None:
            current.send("status", data, None)
        else:
            self.outbox.send_json("status", data, None)

    def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt: global, or only if ``prompt_id`` is the running job."""
        if prompt_id and prompt_id not in self.queue.running_ids():
            return
        self.interrupt_flag.set()

    # -- worker -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._worker, name="fake-comfyui-worker", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping = True
        self.queue.stop()
        self.interrupt_flag.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or running and /free is applied; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy or self.queue.remaining() or self.queue.flags:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.05))
        return True

    def _worker(self) -> None:
        while not self._stopping:
            try:
                self._work_once()
            except Exception as exc:  # a bug in the fake: surface it in the test thread
                self.record_error(exc)

    def _held(self, item: QueueItem) -> bool:
        every = self.faults.holding(self._run_info(item))
        self.held_status_every = every
        return every is not None

    def _work_once(self) -> None:
        self._apply_restart()
        got = self.queue.get(timeout=0.05, held=self._held)
        if got is not None or not self.queue.remaining():
            self.held_status_every = None
        with self._idle:
            self._busy = True
        try:
            if got is not None:
                item, index, epoch = got
                start = self.clock()
                entry = self._execute(item, start, epoch)
                self.queue.task_done(index, entry, epoch)
                self._apply_restart()
                run = self._current
                if run is not None and run.client_id is not None:
                    run.send(
                        "executing", {"node": None, "prompt_id": item.prompt_id}, run.client_id
                    )
                self._current = None
                end = self.clock()
                self.add_interval(start, end, "run", item.prompt_id)
                if run is not None and run.images_generated:
                    own = max(0.0, end - start - run.waited) / run.images_generated
                    self.own_time_per_image += 0.5 * (own - self.own_time_per_image)
            flags = self.queue.take_flags()
            free_memory = bool(flags.get("free_memory", False))
            if flags.get("unload_models", free_memory):
                self.models.loaded = frozenset()
                with self._stats_lock:
                    self._unloads += 1
            if free_memory:
                self.cache = {}
                self.objects = {}
        finally:
            with self._idle:
                self._busy = False
                self._idle.notify_all()

    # -- one prompt ---------------------------------------------------------------------------

    def _execute(self, item: QueueItem, start: float, epoch: int) -> dict[str, Any]:
        run = _Run(self, item, epoch)
        self._current = run
        self.interrupt_flag.clear()
        if self._stopping or run.lost:
            self.interrupt_flag.set()
        self.client_id = run.client_id
        info = run.info = self._run_info(item)
        drop_after = self.faults.take_ws_drop(info)
        if drop_after is not None:
            if drop_after <= 0:
                self.outbox.drop(run.client_id)
            else:
                run.drop_after = drop_after
        bomb = self.faults.take_ws_bomb(info)
        if bomb is not None and run.client_id is not None:
            self.outbox.bomb(run.client_id, bomb)
        run.image_faults = self.faults.take_image_faults(info)

        prompt = item.prompt
        run.add_message("execution_start", {"prompt_id": item.prompt_id}, broadcast=False)
        downtime = self.faults.take_restart(info)
        if downtime is not None:  # the server dies as this prompt starts: it is lost
            self.faults.restart_now(downtime)
        signatures = node_signatures(
            prompt, prompt.keys(), lambda n: is_changed(prompt[n]["class_type"])
        )
        used = set(signatures.values())
        self.cache = {key: value for key, value in self.cache.items() if key in used}
        self.objects = {key: value for key, value in self.objects.items() if key[0] in prompt}
        cached_nodes = [n for n in prompt if signatures.get(n) in self.cache]
        run.add_message(
            "execution_cached",
            {"nodes": cached_nodes, "prompt_id": item.prompt_id},
            broadcast=False,
        )

        def is_cached(node_id: str) -> bool:
            return signatures.get(node_id) in self.cache

        def is_output(node_id: str) -> bool:
            return self.catalog.is_output(prompt[node_id]["class_type"])

        execution = ExecutionList(prompt, is_output, is_cached)
        for output in item.outputs:
            execution.add_node(output)
        failure = self.faults.take_execution_failure(info)
        fail_at = self._failure_target(failure, prompt, list(execution.pending), is_cached)

        ui_outputs: dict[str, dict[str, Any]] = {}
        executed: list[str] = []
        status: Literal["success", "error", "interrupted"] = "success"
        while not execution.is_empty():
            try:
                node_id = execution.stage()
            except DependencyCycleError as exc:
                blamed = execution.cycle_nodes()[0]
                self._report_error(
                    run,
                    blamed,
                    "graph.DependencyCycleError",
                    str(exc),
                    [],
                    {},
                    executed,
                    signatures,
                )
                status = "error"
                break
            inject = None
            if fail_at is not None and fail_at in (node_id, "*"):
                inject, fail_at = failure, None
            outcome = self._execute_node(run, node_id, signatures, ui_outputs, executed, inject)
            if outcome is not None:
                status = outcome
                break
            execution.complete()
        else:
            run.add_message("execution_success", {"prompt_id": item.prompt_id}, broadcast=False)

        self.last_node_id = None
        end = self.clock()
        record = RunRecord(
            prompt_id=item.prompt_id,
            number=item.number,
            status="lost" if run.lost else status,
            cached_nodes=tuple(cached_nodes),
            executed_nodes=tuple(executed),
            outputs={n: ui["output"] for n, ui in ui_outputs.items()},
            model_files=run.model_files,
            images_generated=run.images_generated,
            model_loaded=run.model_loaded,
            start=start,
            end=end,
        )
        with self._stats_lock:
            self._runs.append(record)
        success = status == "success"
        return {
            "prompt": item.public(),
            "outputs": {n: ui["output"] for n, ui in ui_outputs.items()},
            "status": {
                "status_str": "success" if success else "error",
                "completed": success,
                "messages": run.messages,
            },
            "meta": {n: ui["meta"] for n, ui in ui_outputs.items()},
        }

    @staticmethod
    def _run_info(item: QueueItem) -> RunInfo:
        def inputs_of(classes: tuple[str, ...], name: str) -> list[Any]:
            return [
                node["inputs"][name]
                for node in item.prompt.values()
                if isinstance(node, dict)
                and node.get("class_type") in classes
                and name in node.get("inputs", {})
                and not is_link(node["inputs"][name])
            ]

        seeds = inputs_of(("KSampler",), "seed") + inputs_of(("KSamplerAdvanced",), "noise_seed")
        return RunInfo(
            prompt_id=item.prompt_id,
            number=item.number,
            graph=item.prompt,
            client_id=item.extra_data.get("client_id"),
            model_files=loader_files(item.prompt, item.prompt),
            prompt_texts=tuple(str(t) for t in inputs_of(("CLIPTextEncode",), "text")),
            filename_prefixes=tuple(
                str(p) for p in inputs_of(("SaveImage", "PreviewImage"), "filename_prefix")
            ),
            seeds=tuple(int(s) for s in seeds if isinstance(s, int)),
        )

    @staticmethod
    def _failure_target(
        failure: ExecutionFailure | None,
        prompt: dict[str, Any],
        pending: list[str],
        is_cached: Callable[[str], bool],
    ) -> str | None:
        if failure is None or not pending:
            return None
        ordered = [n for n in prompt if n in pending]
        running = [n for n in ordered if not is_cached(n)] or ordered
        if failure.node_id is not None and failure.node_id in pending:
            return failure.node_id
        wanted = failure.node_type or "KSampler"
        for node_id in running:
            if prompt[node_id]["class_type"] == wanted:
                return node_id
        return "*"

    def _needs_models(self, class_type: str) -> bool:
        spec = self.catalog.spec(class_type)
        types = set(spec["output"])
        for section in ("required", "optional"):
            for value in spec["input"].get(section, {}).values():
                if isinstance(value[0], str):
                    types.add(value[0])
        return bool(types & _MODEL_TYPES)

    def _load_models(self, run: _Run, class_type: str) -> None:
        wanted = frozenset(run.model_files)
        if not wanted or wanted == self.models.loaded or not self._needs_models(class_type):
            return
        start = self.clock()
        if self.load_latency > 0:
            time.sleep(self.load_latency)
        self.models.loaded = wanted
        run.model_loaded = True
        run.waited += self.clock() - start
        with self._stats_lock:
            self._model_loads += 1
        self.add_interval(start, self.clock(), "load", run.prompt_id)

    def _execute_node(
        self,
        run: _Run,
        node_id: str,
        signatures: dict[str, str],
        ui_outputs: dict[str, dict[str, Any]],
        executed: list[str],
        failure: ExecutionFailure | None,
    ) -> Literal["error", "interrupted"] | None:
        node = run.prompt[node_id]
        class_type: str = node["class_type"]
        inputs: dict[str, Any] = node["inputs"]
        signature = signatures[node_id]
        run.node_id = node_id
        cached = self.cache.get(signature)
        if cached is not None and failure is None:
            if run.client_id is not None:
                cached_ui = cached.ui or {}
                run.send(
                    "executed",
                    {
                        "node": node_id,
                        "display_node": node_id,
                        "output": cached_ui.get("output"),
                        "prompt_id": run.prompt_id,
                    },
                    run.client_id,
                )
            if cached.ui is not None:
                ui_outputs[node_id] = cached.ui
            run.progress_state.finish(node_id)
            run.send_progress_state()
            return None

        run.progress_state.start(node_id)
        run.send_progress_state()
        run._last_sent_value = -1.0
        input_data: dict[str, Any] = {}
        for name, value in inputs.items():
            if is_link(value):
                upstream = self.cache[signatures[value[0]]]
                input_data[name] = upstream.outputs[int(value[1])]
            else:
                input_data[name] = value
        if class_type in ("SaveImage", "PreviewImage"):
            input_data["prompt"] = run.prompt
            input_data["extra_pnginfo"] = run.extra_data.get("extra_pnginfo")
        if run.client_id is not None:
            self.last_node_id = node_id
            run.send(
                "executing",
                {"node": node_id, "display_node": node_id, "prompt_id": run.prompt_id},
                run.client_id,
            )
        try:
            self._load_models(run, class_type)
            run.check_interrupt()
            if failure is not None:
                if failure.unload_models:  # ComfyUI unloads every model after an OOM
                    self.models.loaded = frozenset()
                raise NodeFailure(failure.exception_type, failure.message, failure.tips)
            outputs, ui = run_node(class_type, input_data, run)
        except Interrupted:
            run.add_message(
                "execution_interrupted",
                {
                    "prompt_id": run.prompt_id,
                    "node_id": node_id,
                    "node_type": class_type,
                    "executed": list(executed),
                },
                broadcast=True,
            )
            return "interrupted"
        except Exception as exc:
            tips = ""
            if isinstance(exc, NodeFailure):
                exception_type, message, tips = exc.exception_type, exc.message, exc.tips
            else:
                self.record_error(exc)
                exception_type = type(exc).__qualname__
                message = str(exc)
            formatted = {k: [_format_value(v)] for k, v in input_data.items()}
            tb = _FAKE_TRACEBACK + traceback.format_tb(exc.__traceback__)[-1:]
            self._report_error(
                run, node_id, exception_type, message, tb, formatted, executed, signatures, tips
            )
            return "error"
        if ui:
            ui_outputs[node_id] = {
                "meta": {
                    "node_id": node_id,
                    "display_node": node_id,
                    "parent_node": None,
                    "real_node_id": node_id,
                },
                "output": ui,
            }
            if run.client_id is not None:
                run.send(
                    "executed",
                    {
                        "node": node_id,
                        "display_node": node_id,
                        "output": ui,
                        "prompt_id": run.prompt_id,
                    },
                    run.client_id,
                )
        self.cache[signature] = _CacheEntry(ui_outputs.get(node_id), outputs)
        run.progress_state.finish(node_id)
        run.send_progress_state()
        executed.append(node_id)
        return None

    @staticmethod
    def _report_error(
        run: _Run,
        node_id: str,
        exception_type: str,
        message: str,
        tb: list[str],
        current_inputs: dict[str, Any],
        executed: list[str],
        signatures: dict[str, str],
        tips: str = "",
    ) -> None:
        run.add_message(
            "execution_error",
            {
                "prompt_id": run.prompt_id,
                "node_id": node_id,
                "node_type": run.prompt[node_id]["class_type"],
                "executed": list(executed),
                "exception_message": f"{message}\n{tips}",
                "exception_type": exception_type,
                "traceback": tb,
                "current_inputs": current_inputs,
                "current_outputs": list(signatures),
            },
            broadcast=False,
        )
