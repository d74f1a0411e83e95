"""Messages of the scheduler domain (the Scheduler's internal API).

Requests (reply type after the arrow; errors are ``Failure(status, error)``)::

    Submit(description, priority, requirements, owner, task_id)  -> Submitted
    Cancel(task_id)                                              -> TaskCancelled
    Requeue(task_id, owner, priority)                            -> Requeued
    TaskFinished(task_id, status, error)                         -> TaskRecorded (asks only)
    TaskHeartbeat(task_id)                                       -> TaskRecorded (asks only)
    GetTask(task_id)                                             -> TaskInfo
    GetStats()                                                   -> SchedulerStats
    ListTasks()                                                  -> TaskList

Sent by the Scheduler to a task's owner (plain tells, no reply expected)::

    StartTask(task_id, description, priority, requirements)
    CancelTask(task_id, reason)

``TaskFinished`` and ``TaskHeartbeat`` sent as plain tells get no reply, so an
owner actor never receives an answer it did not ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class Priority(IntEnum):
    """Task priority; JSON uses the PascalCase name, LMDB the integer."""

    Low = 0
    Normal = 1
    High = 2
    Critical = 3


#: What a task owner is: an actor address (any picklable ``ActorAddress``), a
#: service name from the Kernel's directory (survives restarts of that service
#: and of the whole system), or ``None`` (= the sender of the ``Submit``).
Owner = Any


@dataclass(frozen=True)
class Submit:
    """Queue a task.

    ``priority``: a ``Priority``, its integer (0..3) or its name ("High").
    ``requirements``: plain data (msgpack-able) handed to the owner in ``StartTask``.
    ``owner``: who runs the task (see ``Owner``).
    ``task_id``: the caller's id (e.g. for idempotent resubmission after a crash of
    the caller); an id that already exists is refused with 409.  ``None`` -> generated.
    """

    description: str
    priority: Priority | int | str = Priority.Normal
    requirements: dict[str, Any] = field(default_factory=dict)
    owner: Owner = None
    task_id: str | None = None


@dataclass(frozen=True)
class Submitted:
    task_id: str


@dataclass(frozen=True)
class StartTask:
    """The Scheduler started the task: the owner runs it now and later reports
    ``TaskFinished`` (and, for long tasks, ``TaskHeartbeat`` more often than
    ``scheduler.zombie_timeout_secs``)."""

    task_id: str
    description: str
    priority: Priority
    requirements: dict[str, Any]


@dataclass(frozen=True)
class TaskFinished:
    """Reported by the owner.  ``status`` is "Completed", "Failed" or "Cancelled";
    ``error`` says why when it failed."""

    task_id: str
    status: str
    error: str | None = None


@dataclass(frozen=True)
class TaskHeartbeat:
    """The owner is still working on a running task (resets its zombie deadline)."""

    task_id: str


@dataclass(frozen=True)
class TaskRecorded:
    task_id: str
    status: str


@dataclass(frozen=True)
class Cancel:
    """Cancel a queued or running task (a running task's owner gets ``CancelTask``)."""

    task_id: str


@dataclass(frozen=True)
class TaskCancelled:
    task_id: str
    previous_status: str


@dataclass(frozen=True)
class CancelTask:
    """Sent to the owner of a running task that was cancelled or declared a zombie:
    stop working on it.  The task is already final; the slot is already free."""

    task_id: str
    reason: str


@dataclass(frozen=True)
class Requeue:
    """Put a task back in the queue at its original position within its priority
    (it keeps its submission order, so it runs before later submissions).

    Allowed for Running tasks (the owner gives the task back: no ``CancelTask`` is
    sent), for Failed and Cancelled tasks (a retry), and for Queued tasks that are
    held because their owner address died with the whole system.  ``owner`` /
    ``priority`` replace the task's owner / priority when given.
    """

    task_id: str
    owner: Owner = None
    priority: Priority | int | str | None = None


@dataclass(frozen=True)
class Requeued:
    task_id: str
    attempts: int


@dataclass(frozen=True)
class GetTask:
    task_id: str


@dataclass(frozen=True)
class TaskInfo:
    """The full record: the public fields plus started_at, finished_at,
    requirements, attempts and ``held`` (waiting for a live owner)."""

    task: dict[str, Any]


@dataclass(frozen=True)
class GetStats:
    pass


@dataclass(frozen=True)
class SchedulerStats:
    queued: int
    running: int
    max_concurrent: int
    rate_limit_per_minute: int
    rate_remaining: int

    def as_json(self) -> dict[str, int]:
        return {"queued": self.queued, "running": self.running,
                "max_concurrent": self.max_concurrent,
                "rate_limit_per_minute": self.rate_limit_per_minute,
                "rate_remaining": self.rate_remaining}


@dataclass(frozen=True)
class ListTasks:
    pass


@dataclass(frozen=True)
class TaskList:
    """Public task dicts: queued in start order (priority, then FIFO), running in
    the order they started."""

    queued: tuple[dict[str, Any], ...]
    running: tuple[dict[str, Any], ...]
