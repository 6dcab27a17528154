"""Execution order and cache keys, ported from ComfyUI's ``comfy_execution``.

Order matters to clients: the WebSocket stream names nodes in the order the server runs them
(the Z-Image graph starts with VAELoader ``29``), so ``ExecutionList`` reproduces ComfyUI's
stack-based staging and its "output first" pick heuristic. Cache keys follow ComfyUI's input
signatures: class type plus literal inputs plus the signatures of linked ancestors, with no
node ids, so an identical resubmission is served entirely from cache.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["DependencyCycleError", "ExecutionList", "is_link", "node_signatures"]


def is_link(value: object) -> bool:
    """``["<node id>", <output index>]``, as ComfyUI's ``graph_utils.is_link``."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], (int, float))
    )


class DependencyCycleError(Exception):
    """The graph's remaining nodes block each other."""


def node_signatures(
    prompt: dict[str, Any],
    node_ids: Iterable[str],
    is_changed: Callable[[str], Any],
) -> dict[str, str]:
    """Cache key of each node: class, ``IS_CHANGED`` value, literal inputs and ancestors."""
    memo: dict[str, str] = {}
    visiting: set[str] = set()

    def signature(node_id: str) -> str:
        if node_id in memo:
            return memo[node_id]
        node = prompt.get(node_id)
        if not isinstance(node, dict) or node_id in visiting:
            return f"uncacheable:{uuid.uuid4().hex}"
        visiting.add(node_id)
        parts: list[Any] = [node.get("class_type"), is_changed(node_id)]
        inputs = node.get("inputs", {})
        for key in sorted(inputs):
            value = inputs[key]
            if is_link(value):
                parts.append([key, "ANCESTOR", signature(value[0]), value[1]])
            else:
                parts.append([key, value])
        visiting.discard(node_id)
        digest = hashlib.sha256(
            json.dumps(parts, sort_keys=True, default=repr).encode("utf-8")
        ).hexdigest()
        memo[node_id] = digest
        return digest

    return {node_id: signature(node_id) for node_id in node_ids if node_id in prompt}


class ExecutionList:
    """ComfyUI's ``ExecutionList``: a topological dissolve staged one node at a time."""

    def __init__(
        self,
        prompt: dict[str, Any],
        is_output: Callable[[str], bool],
        is_cached: Callable[[str], bool],
    ) -> None:
        self.prompt = prompt
        self.is_output = is_output
        self.is_cached = is_cached
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, dict[Any, bool]]] = {}
        self.staged: str | None = None

    def add_strong_link(self, from_node_id: str, from_socket: Any, to_node_id: str) -> None:
        if self.is_cached(from_node_id):
            return
        self.add_node(from_node_id)
        if to_node_id not in self.blocking[from_node_id]:
            self.blocking[from_node_id][to_node_id] = {}
            self.block_count[to_node_id] += 1
        self.blocking[from_node_id][to_node_id][from_socket] = True

    def add_node(self, node_id: str) -> None:
        stack = [node_id]
        links: list[tuple[str, Any, str]] = []
        while stack:
            unique_id = stack.pop()
            if unique_id in self.pending:
                continue
            self.pending[unique_id] = True
            self.block_count[unique_id] = 0
            self.blocking[unique_id] = {}
            for value in self.prompt[unique_id]["inputs"].values():
                if is_link(value):
                    from_node_id, from_socket = value
                    if not self.is_cached(from_node_id):
                        stack.append(from_node_id)
                    links.append((from_node_id, from_socket, unique_id))
        for link in links:
            self.add_strong_link(*link)

    def is_empty(self) -> bool:
        return not self.pending

    def _ready(self) -> list[str]:
        return [node_id for node_id in self.pending if self.block_count[node_id] == 0]

    def stage(self) -> str:
        """Pick the next node to run; raises ``DependencyCycleError`` when none can."""
        assert self.staged is None
        available = self._ready()
        if not available:
            raise DependencyCycleError("Dependency cycle detected")
        self.staged = self._pick(available)
        return self.staged

    def _pick(self, available: list[str]) -> str:
        for node_id in available:
            if self.is_output(node_id):
                return node_id
        for node_id in available:
            for blocked in self.blocking[node_id]:
                if self.is_output(blocked):
                    return node_id
        for node_id in available:
            for blocked in self.blocking[node_id]:
                for blocked1 in self.blocking[blocked]:
                    if self.is_output(blocked1):
                        return node_id
        return available[0]

    def complete(self) -> None:
        node_id = self.staged
        assert node_id is not None
        del self.pending[node_id]
        for blocked in self.blocking[node_id]:
            self.block_count[blocked] -= 1
        del self.blocking[node_id]
        self.staged = None

    def cycle_nodes(self) -> list[str]:
        """The pending nodes that block each other (to blame one in the error)."""
        blocked_by: dict[str, set[str]] = {node_id: set() for node_id in self.pending}
        for from_id, targets in self.blocking.items():
            for to_id in targets:
                if to_id in blocked_by:
                    blocked_by[to_id].add(from_id)
        while True:
            free = [node_id for node_id, deps in blocked_by.items() if not deps]
            if not free:
                return list(blocked_by)
            for node_id in free:
                del blocked_by[node_id]
                for deps in blocked_by.values():
                    deps.discard(node_id)
