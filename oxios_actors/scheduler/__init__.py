"""The scheduler domain: a durable priority queue of tasks (§10).

``actor.Scheduler`` is the service (``"scheduler"``); ``messages`` its internal
API; ``records`` the LMDB layout and the reads shared with the edge; ``policy``
the queue and the rate window; ``commit`` the group commit.

How a task owner (e.g. the AgentSupervisor) drives it, all with plain tells
between actors (``self.send``):

1. ``Submit(description, priority, requirements, owner="agents")`` -> a
   ``Submitted(task_id)`` message back (or ``Failure``).  Prefer a service name
   as ``owner``: it survives restarts of that service and of the whole system;
   an actor address is fine for a one-off owner.  ``owner=None`` = the sender.
2. When limits allow, the owner gets ``StartTask(task_id, description,
   priority, requirements)``; the task is already committed as Running.
3. While working, send ``TaskHeartbeat(task_id)`` more often than
   ``scheduler.zombie_timeout_secs`` (default 300 s), or the task is failed as
   a zombie and the owner gets ``CancelTask(task_id, "zombie: no heartbeat")``.
4. At the end send ``TaskFinished(task_id, "Completed" | "Failed" |
   "Cancelled", error)``.  Its slot frees at once.  (As tells, heartbeats and
   reports get no reply; wrapped in an ``Ask`` they get ``TaskRecorded``.)
5. ``CancelTask(task_id, reason)`` from the scheduler means: stop; the task is
   already final (a user ``Cancel`` or a zombie).
6. An agent died: ``Requeue(task_id)`` (back at its place in the queue) or
   ``TaskFinished(task_id, "Failed", reason)``.  After a whole-system restart,
   tasks that were Running are Failed "interrupted by restart"; find them with
   ``GetTask``/``ListTasks`` and ``Requeue(task_id, owner=...)`` by policy."""

from .messages import (
    Cancel,
    CancelTask,
    GetStats,
    GetTask,
    ListTasks,
    Priority,
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

__all__ = [
    "Cancel", "CancelTask", "GetStats", "GetTask", "ListTasks", "Priority", "Requeue", "Requeued",
    "SchedulerStats", "StartTask", "Submit", "Submitted", "TaskCancelled", "TaskFinished",
    "TaskHeartbeat", "TaskInfo", "TaskList", "TaskRecorded",
]
