"""CronService: holds the jobs and fires them on schedule with Thespian timers.

A firing runs the job's goal through the orchestrator as a task (seed with the
job's constraints and criteria, scheduled with its priority).  A job still
running when its next tick comes is skipped (and the skip recorded), never
started twice.  The tick being fired is persisted before it runs, so a restart
never runs it again; ticks missed while the system was down run once at start-up
(``cron.run_missed_on_start``), not once per missed tick.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ..messages import Failure
from ..orchestrator.messages import ChatReply, RunSeedTask
from ..service import DEFERRED, ReplyTo, ServiceActor, rfc3339
from ..store import open_writer, pack, unpack
from . import records

MAX_SLEEP_SECS = 30.0


@dataclass(frozen=True)
class CreateJob:
    fields: dict[str, Any]


@dataclass(frozen=True)
class EditJob:
    id: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeleteJob:
    id: str


@dataclass(frozen=True)
class TriggerJob:
    id: str


class CronService(ServiceActor):
    name = "cron"
    clock = staticmethod(time.time)

    def on_configure(self) -> None:
        self.env = open_writer(self.home, records.DOMAIN)
        self.db = self.env.open_db(records.JOBS_DB.encode())
        self.waiters: dict[str, list[ReplyTo]] = {}
        self.timer = 0
        now = self.clock()
        missed_policy = bool(self.section("cron").get("run_missed_on_start", True))
        due = []
        for job in self.jobs():
            if job.get("running"):
                job.update(running=False, last_success=False, last_result="interrupted by restart")
            if job.get("enabled") and job.get("next_run") is not None and job["next_run"] <= now:
                if missed_policy:
                    due.append(job["id"])
                else:
                    job["skipped_runs"] = job.get("skipped_runs", 0) + 1
                job["next_run"] = self.next_tick(job, now)
            self.save(job)
        for job_id in due:  # once, however many ticks were missed
            self.fire(job_id, manual=None, reason="missed while the system was down")
        self.arm()

    def jobs(self) -> list[dict[str, Any]]:
        with self.env.begin(db=self.db) as txn:
            return [unpack(v) for _, v in txn.cursor().iternext()]

    def load(self, job_id: str) -> dict[str, Any] | None:
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(job_id.encode())
        return None if raw is None else unpack(raw)

    def save(self, job: dict[str, Any]) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(job["id"].encode(), pack(job))

    def next_tick(self, job: dict[str, Any], after: float) -> float | None:
        try:
            return records.next_after(job["schedule"], after)
        except records.CronError:
            return None

    # -- timers -----------------------------------------------------------------
    def arm(self) -> None:
        """One timer for the earliest next_run (re-armed at least every 30 s)."""
        self.timer += 1
        upcoming = [j["next_run"] for j in self.jobs() if j.get("enabled") and j.get("next_run")]
        delay = MAX_SLEEP_SECS if not upcoming else min(MAX_SLEEP_SECS, max(0.0, min(upcoming) - self.clock()))
        self.after(delay, ("tick", self.timer))

    def on_wakeup(self, payload: Any) -> None:
        if payload != ("tick", self.timer):
            return
        now = self.clock()
        for job in self.jobs():
            if job.get("enabled") and job.get("next_run") is not None and job["next_run"] <= now + 0.005:
                self.fire(job["id"], manual=None, reason="schedule")
        self.arm()

    # -- firing -----------------------------------------------------------------
    def fire(self, job_id: str, manual: ReplyTo | None, reason: str) -> None:
        job = self.load(job_id)
        if job is None:
            return
        now = self.clock()
        if manual is None:
            job["next_run"] = self.next_tick(job, max(now, job.get("next_run") or now))
        if job.get("running"):
            job["skipped_runs"] = job.get("skipped_runs", 0) + 1
            job["last_skip"] = rfc3339()
            self.save(job)
            self.audit("cron", "cron_skip", job_id, True, "previous run still in progress")
            return
        job.update(running=True, last_run=now, run_count=job.get("run_count", 0) + 1)
        self.save(job)  # durable before it runs: a restart never runs this tick again
        self.audit("cron", "cron_trigger", job_id, True, f"{job['name']} ({reason})")
        run_id = f"run:{job_id}:{uuid.uuid4().hex[:8]}"
        if manual is not None:
            self.waiters.setdefault(run_id, []).append(manual)
        task = RunSeedTask(job["goal"], tuple(job.get("constraints") or ()),
                           tuple(job.get("acceptance_criteria") or ()), job.get("priority", "Normal"),
                           session_id=f"cron-{job_id}", source="cron")
        if not self.ask_service("orchestrator", run_id, task):
            self.finished(run_id, job_id, False, "the orchestrator is not available")

    def on_answer(self, rid: str, reply: Any) -> None:
        job_id = rid.split(":")[1] if rid.startswith("run:") else ""
        if isinstance(reply, ChatReply):
            self.finished(rid, job_id, bool(reply.passed), reply.reply)
        elif isinstance(reply, Failure):
            self.finished(rid, job_id, False, reply.error)

    def finished(self, run_id: str, job_id: str, success: bool, summary: str) -> None:
        job = self.load(job_id)
        if job is not None:
            job.update(running=False, last_success=success, last_result=summary[:2000])
            self.save(job)
        for waiter in self.waiters.pop(run_id, []):
            self.reply(waiter, {"job_id": job_id, "success": success, "summary": summary})
        self.arm()

    # -- commands ---------------------------------------------------------------
    def on_CreateJob(self, msg: CreateJob) -> Any:
        try:
            fields = records.validate(msg.fields, partial=False)
        except records.CronError as exc:
            return Failure(400, str(exc))
        job_id = str(uuid.uuid4())
        now = self.clock()
        job = {"id": job_id, "constraints": [], "acceptance_criteria": [], "toolchain": "default",
               "priority": "Normal", "enabled": True, **fields, "last_run": None, "last_success": None,
               "last_result": None, "run_count": 0, "skipped_runs": 0, "running": False,
               "created_at": rfc3339(), "created_ts": now}
        job["next_run"] = self.next_tick(job, now)
        self.save(job)
        self.audit("api", "cron_create", job_id, True, job["name"])
        self.arm()
        return {"id": job_id}

    def on_EditJob(self, msg: EditJob) -> Any:
        job = self.load(msg.id)
        if job is None:
            return Failure(404, f"cron job {msg.id} not found")
        try:
            fields = records.validate(msg.fields, partial=True)
        except records.CronError as exc:
            return Failure(400, str(exc))
        job.update(fields)
        if "schedule" in fields or "enabled" in fields:
            job["next_run"] = self.next_tick(job, self.clock())
        self.save(job)
        self.arm()
        return {"updated": msg.id}

    def on_DeleteJob(self, msg: DeleteJob) -> Any:
        with self.env.begin(write=True, db=self.db) as txn:
            if not txn.delete(msg.id.encode()):
                return Failure(404, f"cron job {msg.id} not found")
        self.audit("api", "cron_delete", msg.id, True, None)
        self.arm()
        return {"deleted": msg.id}

    def on_TriggerJob(self, msg: TriggerJob) -> Any:
        job = self.load(msg.id)
        if job is None:
            return Failure(404, f"cron job {msg.id} not found")
        if job.get("running"):
            return Failure(409, f"cron job {msg.id} is already running")
        self.fire(msg.id, manual=self.reply_to, reason="manual trigger")
        return DEFERRED

    def stats(self) -> dict[str, Any]:
        return {"jobs": len(self.jobs())}

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.env.close()
