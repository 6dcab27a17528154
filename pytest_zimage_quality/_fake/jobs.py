"""The 0.18.1 ``/api/jobs`` view over queue and history, ported from ``comfy_execution/jobs.py``."""

from __future__ import annotations

from typing import Any

__all__ = ["JOB_STATUSES", "get_all_jobs", "get_job"]

JOB_STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")
_PREVIEWABLE = frozenset({"images", "video", "audio", "3d", "text"})


def _prune(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _metadata(extra_data: dict[str, Any]) -> tuple[Any, Any]:
    pnginfo = extra_data.get("extra_pnginfo") or {}
    workflow = pnginfo.get("workflow") if isinstance(pnginfo, dict) else None
    workflow_id = workflow.get("id") if isinstance(workflow, dict) else None
    return extra_data.get("create_time"), workflow_id


def _outputs_summary(outputs: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    count = 0
    preview: dict[str, Any] | None = None
    fallback: dict[str, Any] | None = None
    for node_id, node_outputs in outputs.items():
        if not isinstance(node_outputs, dict):
            continue
        for media_type, items in node_outputs.items():
            if media_type == "animated" or not isinstance(items, list):
                continue
            for item in items:
                if not isinstance(item, dict):
                    continue
                count += 1
                if preview is not None or media_type not in _PREVIEWABLE:
                    continue
                enriched = {**item, "nodeId": node_id}
                enriched.setdefault("mediaType", media_type)
                if item.get("type") == "output":
                    preview = enriched
                elif fallback is None:
                    fallback = enriched
    return count, preview or fallback


def _queue_job(item: list[Any], status: str) -> dict[str, Any]:
    priority, prompt_id, _, extra_data, _ = item
    create_time, workflow_id = _metadata(extra_data)
    return _prune(
        {
            "id": prompt_id,
            "status": status,
            "priority": priority,
            "create_time": create_time,
            "outputs_count": 0,
            "workflow_id": workflow_id,
        }
    )


def _history_job(prompt_id: str, entry: dict[str, Any], include_outputs: bool) -> dict[str, Any]:
    priority, _, prompt, extra_data, _ = entry["prompt"]
    create_time, workflow_id = _metadata(extra_data)
    status_info = entry.get("status") or {}
    outputs = entry.get("outputs", {})
    count, preview = _outputs_summary(outputs)
    error = start = end = None
    interrupted = False
    for event, data in status_info.get("messages", []):
        if not isinstance(data, dict):
            continue
        if event == "execution_start":
            start = data.get("timestamp")
        elif event in ("execution_success", "execution_error", "execution_interrupted"):
            end = data.get("timestamp")
            if event == "execution_error":
                error = data
            elif event == "execution_interrupted":
                interrupted = True
    if status_info.get("status_str") == "error":
        status = "cancelled" if interrupted else "failed"
    else:
        status = "completed"
    job = _prune(
        {
            "id": prompt_id,
            "status": status,
            "priority": priority,
            "create_time": create_time,
            "execution_start_time": start,
            "execution_end_time": end,
            "execution_error": error,
            "outputs_count": count,
            "preview_output": preview,
            "workflow_id": workflow_id,
        }
    )
    if include_outputs:
        job["outputs"] = outputs
        job["execution_status"] = status_info
        job["workflow"] = {"prompt": prompt, "extra_data": extra_data}
    return job


def get_job(
    prompt_id: str, running: list[list[Any]], pending: list[list[Any]], history: dict[str, Any]
) -> dict[str, Any] | None:
    if prompt_id in history:
        return _history_job(prompt_id, history[prompt_id], include_outputs=True)
    for item in running:
        if item[1] == prompt_id:
            return _queue_job(item, "in_progress")
    for item in pending:
        if item[1] == prompt_id:
            return _queue_job(item, "pending")
    return None


def get_all_jobs(
    running: list[list[Any]],
    pending: list[list[Any]],
    history: dict[str, Any],
    *,
    statuses: list[str] | None,
    workflow_id: str | None,
    sort_by: str,
    sort_order: str,
    limit: int | None,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    wanted = list(JOB_STATUSES) if statuses is None else statuses
    jobs: list[dict[str, Any]] = []
    if "in_progress" in wanted:
        jobs.extend(_queue_job(item, "in_progress") for item in running)
    if "pending" in wanted:
        jobs.extend(_queue_job(item, "pending") for item in pending)
    if {"completed", "failed", "cancelled"} & set(wanted):
        for prompt_id, entry in history.items():
            job = _history_job(prompt_id, entry, include_outputs=False)
            if job["status"] in wanted:
                jobs.append(job)
    if workflow_id:
        jobs = [job for job in jobs if job.get("workflow_id") == workflow_id]

    def key(job: dict[str, Any]) -> float:
        if sort_by == "execution_duration":
            start, end = job.get("execution_start_time", 0), job.get("execution_end_time", 0)
            return float(end - start) if end and start else 0.0
        return float(job.get("create_time", 0) or 0)

    jobs.sort(key=key, reverse=sort_order == "desc")
    total = len(jobs)
    if offset > 0:
        jobs = jobs[offset:]
    if limit is not None:
        jobs = jobs[:limit]
    return jobs, total
