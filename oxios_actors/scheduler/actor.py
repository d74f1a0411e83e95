"""Scheduler: a durable priority queue that starts tasks within the configured limits.

A task starts only when fewer than ``scheduler.max_concurrent`` tasks run and the
rate window allows: at most ``scheduler.rate_limit_per_minute`` starts in any
sliding 60-second window (``policy.RateWindow``).  When the window is full the
Scheduler arms a timer for the moment the oldest start leaves it.  Both limits
hot-reload.  Highest priority first, FIFO within a priority.

Starting a task = committing it as Running, then telling its owner
``StartTask``.  The owner reports ``TaskFinished`` (and ``TaskHeartbeat`` while
it works); a Running task not heard of for ``scheduler.zombie_timeout_secs`` is
marked Failed "zombie: no heartbeat", its owner gets ``CancelTask`` and the
reap is audited.  Every change is committed (sync) before anyone hears of it.

Owners (see ``messages.Owner``): an actor address, or a service name resolved
through the Kernel's directory at start time.  Addresses are pickled into LMDB.

Restarts.  The Scheduler records the identity of the Kernel process (its
parent) it runs under.  Restarted alone (same Kernel), it restores the queue in
order and keeps Running tasks running (their owners still report to it).  After
a restart of the whole system, Running tasks are marked Failed "interrupted by
restart" (the AgentSupervisor may ``Requeue`` them by policy), and Queued tasks
whose owner is an address from the previous boot are *held*: they keep their
place in the queue listing but start only after ``Requeue(task_id, owner=...)``
gives them a live owner.  Service-name owners never need that.

Changes are group-committed (``commit.GroupCommit``): what arrives together is
committed once, and replies and ``StartTask``/``CancelTask`` go out after it.

Timing uses ``clock()`` (monotonic seconds) scaled by ``time_scale``, so tests
can run the same actor in accelerated time (``tests.actors.FastScheduler``).
"""

from __future__ import annotations

import logging
import os
import pickle
import time
import uuid
from typing import Any

import psutil

from ..messages import Failure, Ok
from ..service import rfc3339
from ..store import open_writer, pack, seq_key, unpack
from . import records as R
from .commit import GroupCommit
from .messages import (
    Cancel,
    CancelTask,
    GetStats,
    GetTask,
    ListTasks,
    Requeue,
    Requeued,
    SchedulerStats,
    StartTask,
    Submit,
    Submitted,
    TaskCancelled,
    TaskFinished,
    TaskHeartbeat,
    TaskInfo,
    TaskList,
    TaskRecorded,
)
from .policy import RATE_WINDOW_SECS, RateWindow, TaskQueue

log = logging.getLogger("oxios.scheduler")

RATE_DB = "rate"  # seq_key(start_seq) -> wall time of the start (the persisted rate window)
MAX_TASK_ID_BYTES = 256
ZOMBIE_SWEEP_MAX_SECS = 5.0
INTERRUPTED = "interrupted by restart"
ZOMBIE = "zombie: no heartbeat"


def boot_id() -> str:
    """The identity of the parent (Kernel) process: changes only when the whole system restarts."""
    ppid = os.getppid()
    try:
        created = psutil.Process(ppid).create_time()
    except psutil.Error:
        created = 0.0
    return f"{ppid}:{created:.2f}"


class Scheduler(GroupCommit):
    name = "scheduler"
    time_scale = 1.0  # clock seconds per real second (tests speed it up)

    def clock(self) -> float:
        return time.monotonic() * self.time_scale

    def after_clock(self, secs: float, payload: Any) -> None:
        self.after(max(0.0, secs) / self.time_scale, payload)

    # -- setup and recovery -------------------------------------------------
    def on_configure(self) -> None:
        self.env = open_writer(self.home, R.DOMAIN)
        names = (R.TASKS_DB, R.QUEUE_DB, R.RUNNING_DB, R.DONE_DB, R.META_DB, RATE_DB)
        (self.tasks_db, self.queue_db, self.running_db, self.done_db, self.meta_db,
         self.rate_db) = (self.env.open_db(n.encode()) for n in names)
        self.init_batch()
        self.rate = RateWindow(self.limit("rate_limit_per_minute", 60), self.clock)
        self.boot = boot_id()
        self.decisions = self.finished = self.zombies = 0  # tasks started, ended, reaped
        self.reload()
        self.after_clock(self.sweep_interval(), "zombie")
        self.dispatch()

    def reload(self) -> None:
        self.live: dict[str, dict[str, Any]] = {}  # Queued (incl. held) and Running records
        self.queue = TaskQueue()
        self.held: set[str] = set()
        self.running: dict[str, float] = {}  # task_id -> last heard of (clock)
        self.owners: dict[str, Any] = {}  # task_id -> unpickled address (cache)
        self.rate_due: float | None = None
        interrupted: list[dict[str, Any]] = []
        with self.env.begin(write=True) as txn:
            meta = {bytes(k).decode(): unpack(v) for k, v in txn.cursor(db=self.meta_db)}
            self.seq, self.start_seq = meta.get("seq", 0), meta.get("start_seq", 0)
            self.done_seq = meta.get("done_seq", 0)
            self.done_count = int(txn.stat(self.done_db)["entries"])
            same_boot = meta.get("boot") == self.boot
            for _, raw_id in list(txn.cursor(db=self.queue_db)):
                raw = txn.get(bytes(raw_id), db=self.tasks_db)
                if raw is None:  # never written apart; tolerate a hand-edited store
                    continue
                rec = unpack(raw)
                self.live[rec["id"]] = rec
                if not same_boot and "address" in (rec.get("owner") or {}):
                    rec.update(held=True, owner_boot=meta.get("boot"))  # its owner died with that boot
                    txn.put(R.task_key(rec["id"]), pack(rec), db=self.tasks_db)
                if rec.get("held"):
                    self.held.add(rec["id"])
                else:
                    self.queue.push(rec["id"], rec["priority"], rec["seq"])
            now = self.clock()
            for _, raw_id in list(txn.cursor(db=self.running_db)):
                raw = txn.get(bytes(raw_id), db=self.tasks_db)
                if raw is None:
                    continue
                rec = unpack(raw)
                if same_boot:
                    self.live[rec["id"]] = rec
                    self.running[rec["id"]] = now
                else:
                    interrupted.append(rec)
            for rec in interrupted:
                if "address" in (rec.get("owner") or {}):
                    rec["owner_boot"] = meta.get("boot")
                txn.delete(seq_key(rec["start_seq"]), db=self.running_db)
                self._finalize(txn, rec, R.FAILED, INTERRUPTED)
            self.rate.restore(unpack(v) for _, v in txn.cursor(db=self.rate_db))
            txn.put(b"boot", pack(self.boot), db=self.meta_db)
        if interrupted:
            log.warning("scheduler: %d running task(s) interrupted by a restart", len(interrupted))

    # -- config ---------------------------------------------------------------
    def limit(self, name: str, default: int) -> int:
        return int(self.section("scheduler").get(name, default))

    def max_concurrent(self) -> int:
        return self.limit("max_concurrent", 5)

    def sweep_interval(self) -> float:
        return min(self.limit("zombie_timeout_secs", 300) / 2.0, ZOMBIE_SWEEP_MAX_SECS)

    def on_config_changed(self) -> None:
        self.rate.limit = self.limit("rate_limit_per_minute", 60)
        self.rate_due = None  # re-arm for the new limit if still blocked
        self.dispatch()

    # -- the decision -----------------------------------------------------------
    def dispatch(self) -> None:
        """Start what the limits allow; each start is told to its owner after the commit."""
        limit = self.max_concurrent()
        if not len(self.queue) or len(self.running) >= limit:
            return
        if self.rate.remaining() <= 0:
            self.arm_rate_timer()
            return
        txn = self.batch()
        now, wall, stamp = self.clock(), time.time(), rfc3339()
        while len(self.queue) and len(self.running) < limit:
            if self.rate.remaining() <= 0:
                self.arm_rate_timer()
                break
            rec = self.live[self.queue.pop()]
            self.start_seq += 1
            txn.delete(R.queue_key(rec["priority"], rec["seq"]), db=self.queue_db)
            rec.update(status=R.RUNNING, started_at=stamp, start_seq=self.start_seq)
            txn.put(R.task_key(rec["id"]), pack(rec), db=self.tasks_db)
            txn.put(seq_key(self.start_seq), rec["id"].encode(), db=self.running_db)
            txn.put(seq_key(self.start_seq), pack(wall), db=self.rate_db)
            self.rate.take()
            self.running[rec["id"]] = now
            self.decisions += 1
            owner = self.owner_of(rec)
            if owner is None:
                log.error("scheduler: task %s has no reachable owner", rec["id"])
                continue
            self.tell_after_commit(owner, StartTask(rec["id"], rec["description"],
                                                    R.Priority(rec["priority"]), rec["requirements"]))
        txn.put(b"start_seq", pack(self.start_seq), db=self.meta_db)
        cursor = txn.cursor(db=self.rate_db)  # forget starts that left the window
        while cursor.first() and unpack(cursor.value()) <= wall - RATE_WINDOW_SECS:
            cursor.delete()

    def arm_rate_timer(self) -> None:
        now = self.clock()
        due = now + self.rate.free_in()
        if self.rate_due is None or due < self.rate_due or self.rate_due < now:
            self.rate_due = due
            self.after_clock(due - now + 0.001, "rate")

    def on_wakeup(self, payload: Any) -> None:
        if payload == "rate":
            self.rate_due = None
            self.dispatch()
        elif payload == "zombie":
            self.reap_zombies()
            self.after_clock(self.sweep_interval(), "zombie")

    # -- owners -------------------------------------------------------------------
    def owner_of(self, rec: dict[str, Any]) -> Any:
        owner = rec.get("owner") or {}
        if "service" in owner:
            return self.directory.get(owner["service"])
        if "address" in owner:
            addr = self.owners.get(rec["id"])
            if addr is None:
                addr = self.owners[rec["id"]] = pickle.loads(owner["address"])
            return addr
        return None

    # -- records --------------------------------------------------------------------
    def stored(self, task_id: str) -> dict[str, Any] | None:
        rec = self.live.get(task_id)
        if rec is None and len(task_id.encode()) <= MAX_TASK_ID_BYTES:
            with self.reading() as txn:
                raw = txn.get(R.task_key(task_id), db=self.tasks_db)
            rec = None if raw is None else unpack(raw)
        return rec

    def _finalize(self, txn: Any, rec: dict[str, Any], status: str, error: str | None) -> None:
        """Make ``rec`` final in ``txn`` (the caller removed it from queue/running)."""
        self.done_seq += 1
        rec.update(status=status, error=error, finished_at=rfc3339(), done_seq=self.done_seq, held=False)
        txn.put(R.task_key(rec["id"]), pack(rec), db=self.tasks_db)
        txn.put(seq_key(self.done_seq), rec["id"].encode(), db=self.done_db)
        txn.put(b"done_seq", pack(self.done_seq), db=self.meta_db)
        self.done_count += 1
        if self.done_count > R.MAX_FINISHED:
            cursor = txn.cursor(db=self.done_db)
            if cursor.first():
                txn.delete(bytes(cursor.value()), db=self.tasks_db)
                cursor.delete()
                self.done_count -= 1

    def finish(self, task_id: str, status: str, error: str | None, notify: str | None = None) -> str:
        """End a live task (Queued or Running), start what its slot allows; returns
        the previous status.  ``notify``: the reason sent to a running task's owner."""
        rec = self.live.pop(task_id)
        was = rec["status"]
        owner = self.owner_of(rec) if notify and was == R.RUNNING else None
        txn = self.batch()
        if was == R.QUEUED:
            self.queue.remove(task_id)
            self.held.discard(task_id)
            txn.delete(R.queue_key(rec["priority"], rec["seq"]), db=self.queue_db)
        else:
            self.running.pop(task_id, None)
            txn.delete(seq_key(rec["start_seq"]), db=self.running_db)
        self._finalize(txn, rec, status, error)
        self.owners.pop(task_id, None)
        self.finished += 1
        if owner is not None and notify:
            self.tell_after_commit(owner, CancelTask(task_id, notify))
        self.dispatch()
        return str(was)

    # -- handlers ---------------------------------------------------------------------
    def on_Submit(self, msg: Submit) -> Any:
        try:
            priority = R.parse_priority(msg.priority)
            if not isinstance(msg.description, str):
                raise ValueError("description must be a string")
            if not isinstance(msg.requirements, dict):
                raise ValueError("requirements must be a mapping")
            pack(msg.requirements)
            owner = msg.owner if msg.owner is not None else (self.reply_to and self.reply_to.address)
            encoded = R.encode_owner(owner, self.directory)
        except (ValueError, TypeError) as exc:
            return self.respond(Failure(400, str(exc)))
        task_id = msg.task_id if msg.task_id is not None else f"task-{uuid.uuid4().hex[:12]}"
        if not isinstance(task_id, str) or not task_id or len(task_id.encode()) > MAX_TASK_ID_BYTES:
            return self.respond(Failure(
                400, f"task_id must be a non-empty string of at most {MAX_TASK_ID_BYTES} bytes"))
        if self.stored(task_id) is not None:
            return self.respond(Failure(409, f"task {task_id} already exists"))
        self.seq += 1
        rec = R.new_record(task_id, msg.description, priority, dict(msg.requirements), encoded,
                           self.boot, self.seq, rfc3339())
        self.live[task_id] = rec
        self.queue.push(task_id, int(priority), self.seq)
        txn = self.batch()
        txn.put(R.task_key(task_id), pack(rec), db=self.tasks_db)
        txn.put(R.queue_key(int(priority), self.seq), task_id.encode(), db=self.queue_db)
        txn.put(b"seq", pack(self.seq), db=self.meta_db)
        reply = self.respond(Submitted(task_id))  # before StartTask: the owner may be the submitter
        self.dispatch()
        return reply

    def answer(self, reply: Any) -> Any:
        """Reply to asks only: a plain tell from an owner gets no answer."""
        return self.respond(reply) if self.reply_to is not None and self.reply_to.rid is not None else None

    def on_TaskFinished(self, msg: TaskFinished) -> Any:
        if msg.status not in R.FINAL_STATUSES:
            return self.answer(Failure(400, "status must be Completed, Failed or Cancelled"))
        rec = self.stored(msg.task_id)
        if rec is None:
            return self.answer(Failure(404, f"task {msg.task_id} not found"))
        if rec["status"] == R.RUNNING:
            self.finish(msg.task_id, msg.status, msg.error if msg.status != R.COMPLETED else None)
            return self.answer(TaskRecorded(msg.task_id, msg.status))
        if rec["status"] == R.QUEUED:
            return self.answer(Failure(409, f"task {msg.task_id} has not started"))
        return self.answer(TaskRecorded(msg.task_id, rec["status"]))  # already final: first word wins

    def on_TaskHeartbeat(self, msg: TaskHeartbeat) -> Any:
        if msg.task_id in self.running:
            self.running[msg.task_id] = self.clock()
            return self.answer(TaskRecorded(msg.task_id, R.RUNNING))
        rec = self.stored(msg.task_id)
        if rec is None:
            return self.answer(Failure(404, f"task {msg.task_id} not found"))
        return self.answer(TaskRecorded(msg.task_id, rec["status"]))

    def on_Cancel(self, msg: Cancel) -> Any:
        rec = self.stored(msg.task_id)
        if rec is None:
            return self.respond(Failure(404, f"task {msg.task_id} not found"))
        if rec["status"] in R.FINAL_STATUSES:
            return self.respond(Failure(409, f"task {msg.task_id} is already {rec['status']}"))
        was = self.finish(msg.task_id, R.CANCELLED, None, notify="cancelled")
        return self.respond(TaskCancelled(msg.task_id, was))

    def on_Requeue(self, msg: Requeue) -> Any:
        rec = self.stored(msg.task_id)
        if rec is None:
            return self.respond(Failure(404, f"task {msg.task_id} not found"))
        try:
            priority = R.parse_priority(msg.priority) if msg.priority is not None else None
            owner = R.encode_owner(msg.owner, self.directory) if msg.owner is not None else None
        except ValueError as exc:
            return self.respond(Failure(400, str(exc)))
        if rec["status"] == R.QUEUED and not rec.get("held"):
            return self.respond(Failure(409, f"task {msg.task_id} is already queued"))
        if owner is None and (rec.get("held") or ("address" in (rec.get("owner") or {})
                                                  and rec.get("owner_boot") != self.boot)):
            return self.respond(Failure(409, f"task {msg.task_id} has no live owner; "
                                             "requeue it with an owner"))
        txn = self.batch()
        if rec["status"] == R.RUNNING:
            self.running.pop(msg.task_id, None)
            txn.delete(seq_key(rec["start_seq"]), db=self.running_db)
        elif rec["status"] == R.QUEUED:  # held
            self.held.discard(msg.task_id)
            txn.delete(R.queue_key(rec["priority"], rec["seq"]), db=self.queue_db)
        else:
            txn.delete(seq_key(rec["done_seq"]), db=self.done_db)
            self.done_count -= 1
        if owner is not None:
            rec.update(owner=owner, owner_boot=self.boot)
            self.owners.pop(msg.task_id, None)
        if priority is not None:
            rec["priority"] = int(priority)
        rec.update(status=R.QUEUED, error=None, started_at=None, finished_at=None, held=False,
                   attempts=rec.get("attempts", 1) + 1)
        self.live[msg.task_id] = rec
        self.queue.push(msg.task_id, rec["priority"], rec["seq"])
        txn.put(R.task_key(msg.task_id), pack(rec), db=self.tasks_db)
        txn.put(R.queue_key(rec["priority"], rec["seq"]), msg.task_id.encode(), db=self.queue_db)
        reply = self.respond(Requeued(msg.task_id, rec["attempts"]))
        self.dispatch()
        return reply

    def reap_zombies(self) -> None:
        timeout = self.limit("zombie_timeout_secs", 300)
        now = self.clock()
        for task_id, seen in list(self.running.items()):
            if now - seen > timeout and task_id in self.live:
                self.zombies += 1
                self.finish(task_id, R.FAILED, ZOMBIE, notify=ZOMBIE)
                self.audit("scheduler", "zombie_reap", f"task:{task_id}", True,
                           f"no report for more than {timeout}s")

    def on_GetTask(self, msg: GetTask) -> Any:
        rec = self.stored(msg.task_id)
        return self.respond(Failure(404, f"task {msg.task_id} not found") if rec is None
                            else TaskInfo(R.detail(rec)))

    def on_GetStats(self, msg: GetStats) -> Any:
        return self.respond(SchedulerStats(len(self.queue) + len(self.held), len(self.running),
                                           self.max_concurrent(), self.rate.limit, self.rate.remaining()))

    def on_ListTasks(self, msg: ListTasks) -> Any:
        with self.reading() as txn:
            lists = R.read_lists(txn, self.tasks_db, self.queue_db, self.running_db)
        return self.respond(TaskList(tuple(lists["queued"]), tuple(lists["running"])))

    # Replies that owners may send back to our tells: never answer them (no ping-pong).
    def on_Failure(self, msg: Failure) -> None:
        log.info("scheduler: got %r", msg)

    def on_Ok(self, msg: Ok) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"queued": len(self.queue), "held": len(self.held), "running": len(self.running),
                "decisions": self.decisions, "finished": self.finished, "zombies": self.zombies,
                "commits": self.commits, "boot": self.boot, "rate_remaining": self.rate.remaining()}

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.flush()
            self.env.close()


__all__ = ["Scheduler", "boot_id"]
