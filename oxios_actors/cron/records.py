"""Schedules, validation, key layout and reads of cron jobs (CronService and edge).

Expressions have 6 fields, seconds first (``sec min hour day month weekday``), UTC;
a 5-field expression is minute-first and gets second ``0``.

Environment ``cron``: db ``jobs`` maps the job id (a UUID) to the job record.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from croniter import CroniterBadDateError, croniter

from ..store import ReadOnlyStore

DOMAIN = "cron"
JOBS_DB = "jobs"
PRIORITIES = ("Low", "Normal", "High", "Critical")
PUBLIC = ("id", "name", "schedule", "goal", "constraints", "acceptance_criteria", "toolchain", "priority",
          "enabled", "last_run", "last_success", "last_result", "next_run", "run_count", "skipped_runs",
          "created_at")


class CronError(ValueError):
    pass


def normalise(schedule: str) -> str:
    fields = schedule.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise CronError("schedule must have 6 fields (sec min hour day month weekday) or 5 (min hour day "
                        "month weekday)")
    expr = " ".join(fields)
    if not croniter.is_valid(expr, second_at_beginning=True):
        raise CronError(f"invalid cron expression: {schedule}")
    return expr


def next_after(schedule: str, after: float) -> float:
    """The first tick strictly after ``after`` (epoch seconds, UTC)."""
    start = datetime.fromtimestamp(after, UTC)
    try:
        return float(croniter(normalise(schedule), start, second_at_beginning=True).get_next(float))
    except CroniterBadDateError:
        raise CronError(f"schedule never fires: {schedule}") from None


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def validate(body: Any, *, partial: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise CronError("cron job must be a JSON object")
    kinds = {"name": str, "schedule": str, "goal": str, "toolchain": str, "priority": str, "enabled": bool,
             "constraints": list, "acceptance_criteria": list}
    for key, value in body.items():
        if key not in kinds:
            raise CronError(f"unknown cron job field: {key}")
        if not isinstance(value, kinds[key]) or (kinds[key] is str and isinstance(value, bool)):
            raise CronError(f"{key} must be a {kinds[key].__name__}")
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise CronError(f"{key} must be a list of strings")
    if not partial:
        for key in ("name", "schedule", "goal"):
            if key not in body:
                raise CronError(f"missing required field: {key}")
    for key in ("name", "goal"):
        if key in body and not body[key].strip():
            raise CronError(f"{key} must not be empty")
    if "priority" in body and body["priority"] not in PRIORITIES:
        raise CronError(f"priority must be one of {', '.join(PRIORITIES)}")
    if "schedule" in body:
        normalise(body["schedule"])
        import time
        next_after(body["schedule"], time.time())  # impossible dates never fire
    return dict(body)


def public(job: dict[str, Any]) -> dict[str, Any]:
    out = {k: job.get(k) for k in PUBLIC}
    out["last_run"], out["next_run"] = iso(job.get("last_run")), iso(job.get("next_run"))
    return out


def list_jobs(store: ReadOnlyStore) -> list[dict[str, Any]]:
    jobs = [j for _, j in store.items(DOMAIN, JOBS_DB)]
    jobs.sort(key=lambda j: j.get("created_ts", 0))
    return [public(j) for j in jobs]


def get_job(store: ReadOnlyStore, job_id: str) -> dict[str, Any] | None:
    job = store.get(DOMAIN, JOBS_DB, job_id.encode())
    return None if job is None else public(job)
