"""Key layout and reads of the scheduler domain, shared by the Scheduler and the edge.

Environment ``scheduler``:

- db ``tasks``: ``task_id`` (UTF-8) -> msgpack record ``{id, description,
  priority (int 0..3), status, created_at, error, started_at, finished_at,
  requirements, owner, owner_boot, seq, start_seq, done_seq, attempts, held}``.
  ``owner`` is ``{"service": name}``, ``{"address": pickled ActorAddress}`` or None.
- db ``queue``: ``bytes([3 - priority]) + seq_key(seq)`` -> task_id, so LMDB order
  is start order: highest priority first, FIFO (submission seq) within one.
- db ``running``: ``seq_key(start_seq)`` -> task_id, in the order tasks started.
- db ``done``: ``seq_key(done_seq)`` -> task_id of finished tasks (Completed,
  Failed, Cancelled), oldest first; only the newest ``MAX_FINISHED`` are kept.
- db ``meta``: ``seq``, ``start_seq``, ``done_seq`` counters and ``boot`` (the
  identity of the Kernel process the tasks were started under).
"""

from __future__ import annotations

import pickle
from typing import Any

import lmdb
from thespian.actors import ActorAddress

from ..store import ReadOnlyStore, seq_key, unpack
from .messages import Priority

DOMAIN = "scheduler"
TASKS_DB = "tasks"
QUEUE_DB = "queue"
RUNNING_DB = "running"
DONE_DB = "done"
META_DB = "meta"

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "Queued", "Running", "Completed", "Failed", "Cancelled"
FINAL_STATUSES = (COMPLETED, FAILED, CANCELLED)
MAX_FINISHED = 10_000

PUBLIC_FIELDS = ("id", "description", "priority", "status", "created_at", "error")


def parse_priority(value: Any) -> Priority:
    """A ``Priority`` from itself, its int or its PascalCase name; ValueError otherwise."""
    if isinstance(value, Priority):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
        return Priority(value)
    if isinstance(value, str) and value in Priority.__members__:
        return Priority[value]
    raise ValueError(f"priority must be one of Low, Normal, High, Critical (or 0..3), got {value!r}")


def encode_owner(owner: Any, directory: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a task owner: a service name (must be in ``directory``)
    or a pickled actor address; ValueError otherwise."""
    if isinstance(owner, str):
        if owner not in directory:
            raise ValueError(f"owner service {owner!r} is not in the directory")
        return {"service": owner}
    if isinstance(owner, ActorAddress):
        return {"address": pickle.dumps(owner)}
    raise ValueError(f"owner must be an actor address or a service name, got {type(owner).__name__}")


def new_record(task_id: str, description: str, priority: int, requirements: dict[str, Any],
               owner: dict[str, Any], owner_boot: str, seq: int, created_at: str) -> dict[str, Any]:
    return {"id": task_id, "description": description, "priority": int(priority), "status": QUEUED,
            "created_at": created_at, "error": None, "started_at": None, "finished_at": None,
            "requirements": requirements, "owner": owner, "owner_boot": owner_boot, "seq": seq,
            "start_seq": 0, "done_seq": 0, "attempts": 1, "held": False}


def queue_key(priority: int, seq: int) -> bytes:
    return bytes([3 - priority]) + seq_key(seq)


def task_key(task_id: str) -> bytes:
    return task_id.encode()


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The contract's task item (§10): ``{id, description, priority, status, created_at, error}``."""
    return {"id": record["id"], "description": record["description"],
            "priority": Priority(record["priority"]).name, "status": record["status"],
            "created_at": record["created_at"], "error": record["error"]}


def detail(record: dict[str, Any]) -> dict[str, Any]:
    """Everything but the internal bookkeeping (seqs, owner bytes)."""
    out = public(record)
    for name in ("started_at", "finished_at", "requirements", "attempts", "held"):
        out[name] = record.get(name)
    owner = record.get("owner")
    out["owner_service"] = owner.get("service") if isinstance(owner, dict) else None
    return out


def read_lists(txn: lmdb.Transaction, tasks_db: Any, queue_db: Any,
               running_db: Any) -> dict[str, list[dict[str, Any]]]:
    """``{queued: [...], running: [...]}`` of public items, in start order."""
    out: dict[str, list[dict[str, Any]]] = {"queued": [], "running": []}
    for name, db in (("queued", queue_db), ("running", running_db)):
        for _, raw_id in txn.cursor(db=db):
            raw = txn.get(bytes(raw_id), db=tasks_db)
            if raw is not None:
                out[name].append(public(unpack(raw)))
    return out


def task_lists(store: ReadOnlyStore) -> dict[str, list[dict[str, Any]]]:
    """The edge's read of ``GET /api/scheduler/tasks`` (one consistent snapshot)."""
    found = [store.db(DOMAIN, name) for name in (TASKS_DB, QUEUE_DB, RUNNING_DB)]
    if any(f is None for f in found):
        return {"queued": [], "running": []}
    env = found[0][0]  # type: ignore[index]
    with env.begin() as txn:
        return read_lists(txn, *(f[1] for f in found))  # type: ignore[index]


def get_task(store: ReadOnlyStore, task_id: str) -> dict[str, Any] | None:
    return store.get(DOMAIN, TASKS_DB, task_key(task_id))
