"""§10 Scheduler: ordering and limits on simpleSystemBase (fast), endpoints and
SIGKILL recovery against the real actor system."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import pytest
from thespian.actors import ActorExitRequest, ActorSystem

from http_edge.errors import ApiError
from oxios_actors.messages import Answer, Ask, ConfigChanged, Configure, Failure, Ping, Pong
from oxios_actors.scheduler.messages import (
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
from oxios_actors.scheduler.policy import RateWindow, TaskQueue
from oxios_actors.store import pack, state_dir

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "api-reference.md"
SCHEDULER = "oxios_actors.scheduler.actor.Scheduler"
FAST = "tests.actors.FastScheduler"


# ---------------------------------------------------------------- pure policy
def test_task_queue_orders_by_priority_then_fifo_and_removes_lazily():
    q = TaskQueue()
    for i, (tid, prio) in enumerate([("l1", 0), ("n1", 1), ("c1", 3), ("h1", 2), ("c2", 3), ("l2", 0)]):
        q.push(tid, prio, i)
    assert q.ordered() == ["c1", "c2", "h1", "n1", "l1", "l2"]
    q.remove("c2")
    assert "c2" not in q and len(q) == 5
    assert [q.pop() for _ in range(5)] == ["c1", "h1", "n1", "l1", "l2"]
    assert q.peek() is None


def test_rate_window_slides_and_survives_export():
    now = [1000.0]
    w = RateWindow(3, clock=lambda: now[0])
    for dt in (0.0, 10.0, 20.0):
        now[0] = 1000.0 + dt
        w.take()
    assert w.remaining() == 0
    assert w.free_in() == pytest.approx(40.0)  # the start at 1000 leaves the window at 1060
    now[0] = 1060.0
    assert w.remaining() == 1 and w.free_in() == 0.0
    w.limit = 1  # lowered: the two starts still in the window count
    assert w.remaining() == 0 and w.free_in() == pytest.approx(20.0)
    copy = RateWindow(1, clock=lambda: now[0])
    copy.restore(w.export())
    assert copy.remaining() == 0 and copy.free_in() == pytest.approx(20.0, abs=0.01)


# ------------------------------------------------------- simpleSystemBase actor
@pytest.fixture
def asys() -> Iterator[ActorSystem]:
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    yield system
    system.shutdown()


class Harness:
    """A Scheduler on simpleSystemBase with a Recorder as task owner (also
    reachable as service "runner") and another as the audit ledger."""

    def __init__(self, asys: ActorSystem, home: Path, cls: str = SCHEDULER, **cfg: int) -> None:
        self.asys, self.home, self.cls = asys, str(home), cls
        self.owner = asys.createActor("tests.actors.Recorder")
        self.auditor = asys.createActor("tests.actors.Recorder")
        self.config = {"scheduler": {"max_concurrent": 5, "rate_limit_per_minute": 1000,
                                     "zombie_timeout_secs": 300, **cfg}}
        self.start()

    def start(self) -> None:
        self.addr = self.asys.createActor(self.cls)
        directory = {"audit": self.auditor, "runner": self.owner}
        ready = self.asys.ask(self.addr, Configure("scheduler", self.home, directory, self.config), 10)
        assert ready is not None and ready.name == "scheduler"

    def stop(self) -> None:
        self.asys.tell(self.addr, ActorExitRequest())
        time.sleep(0.1)

    def ask(self, msg: Any) -> Any:
        reply = self.asys.ask(self.addr, Ask("r", msg), 10)
        assert isinstance(reply, Answer), reply
        return reply.reply

    def submit(self, description: str, priority: Any = "Normal", **kw: Any) -> str:
        kw.setdefault("owner", self.owner)
        reply = self.ask(Submit(description, priority, kw.pop("requirements", {}), **kw))
        assert isinstance(reply, Submitted), reply
        return reply.task_id

    def finish(self, task_id: str, status: str = "Completed", error: str | None = None) -> Any:
        return self.ask(TaskFinished(task_id, status, error))

    def reconfigure(self, **cfg: int) -> None:
        self.config = {"scheduler": {**self.config["scheduler"], **cfg}}
        self.asys.ask(self.addr, Ask("c", ConfigChanged(self.config)), 5)  # answered with an ack

    def recorded(self, kind: type = StartTask, of: Any = None) -> list[Any]:
        return [m for m in self.asys.ask(of or self.owner, "recorded", 10) if isinstance(m, kind)]

    def started(self) -> list[str]:
        return [m.task_id for m in self.recorded(StartTask)]

    def stats(self) -> SchedulerStats:
        reply = self.ask(GetStats())
        assert isinstance(reply, SchedulerStats)
        return reply

    def wait(self, predicate: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not reached in time"
            time.sleep(0.05)


def test_priority_order_with_fifo_within_a_priority(asys, tmp_path):
    h = Harness(asys, tmp_path, max_concurrent=1)
    blocker = h.submit("blocker", "Normal")
    ids = {name: h.submit(name, name[:-1]) for name in
           ("Low1", "Normal1", "Critical1", "High1", "Low2", "Normal2", "Critical2", "High2")}
    assert h.started() == [blocker]  # max_concurrent=1: everything else waits
    listing = h.ask(ListTasks())
    assert isinstance(listing, TaskList)
    expected = ["Critical1", "Critical2", "High1", "High2", "Normal1", "Normal2", "Low1", "Low2"]
    assert [t["description"] for t in listing.queued] == expected
    assert [t["priority"] for t in listing.queued][:3] == ["Critical", "Critical", "High"]
    order = []
    current = blocker
    for _ in expected:
        assert isinstance(h.finish(current), TaskRecorded)
        current = h.started()[-1]
        order.append(current)
    assert order == [ids[name] for name in expected]
    start = h.recorded(StartTask)[1]
    assert start.priority is Priority.Critical and start.description == "Critical1"


def test_max_concurrent_is_enforced_and_hot_reloaded(asys, tmp_path):
    h = Harness(asys, tmp_path, max_concurrent=2)
    ids = [h.submit(f"t{i}") for i in range(6)]
    assert h.started() == ids[:2]
    s = h.stats()
    assert (s.running, s.queued, s.max_concurrent) == (2, 4, 2)
    h.finish(ids[0])
    assert h.started() == ids[:3]  # one slot freed, one task started
    h.reconfigure(max_concurrent=4)
    h.wait(lambda: len(h.started()) == 5)
    assert h.stats().running == 4 and h.stats().max_concurrent == 4
    h.reconfigure(max_concurrent=1)
    assert h.stats().max_concurrent == 1
    h.finish(ids[1])
    h.finish(ids[2])
    assert len(h.started()) == 5 and h.stats().running == 2  # still above the new limit
    h.finish(ids[3])
    h.finish(ids[4])
    assert h.started()[-1] == ids[5] and h.stats().running == 1


def test_rate_limit_is_enforced_and_a_timer_starts_the_rest(asys, tmp_path):
    # FastScheduler: the same actor with a clock 20x faster, so the 60 s window is 3 s.
    h = Harness(asys, tmp_path, cls=FAST, max_concurrent=10, rate_limit_per_minute=2)
    ids = [h.submit(f"r{i}") for i in range(5)]
    assert h.started() == ids[:2]
    s = h.stats()
    assert (s.running, s.queued, s.rate_limit_per_minute, s.rate_remaining) == (2, 3, 2, 0)
    h.finish(ids[0])  # a free slot does not beat the rate limit
    assert h.started() == ids[:2]
    # nothing else happens: the scheduler's own timer starts the next two when the window frees
    h.wait(lambda: len(h.started()) == 4)
    assert h.started() == ids[:4] and h.stats().rate_remaining == 0
    h.reconfigure(rate_limit_per_minute=100)  # hot reload: more room in the same window
    h.wait(lambda: len(h.started()) == 5)
    assert 0 < h.stats().rate_remaining <= 100 - 3  # the starts of the current window count


def test_rate_window_survives_a_restart(asys, tmp_path):
    h = Harness(asys, tmp_path, max_concurrent=10, rate_limit_per_minute=2)
    ids = [h.submit(f"w{i}") for i in range(3)]
    h.stop()
    h.start()
    s = h.stats()
    assert (s.running, s.queued, s.rate_remaining) == (2, 1, 0)  # the two starts still count
    assert h.started() == ids[:2]


def test_restart_restores_the_queue_in_order_and_keeps_running_tasks(asys, tmp_path):
    h = Harness(asys, tmp_path, max_concurrent=1)
    blocker = h.submit("blocker")
    low, high1, high2 = h.submit("low", "Low"), h.submit("high1", "High"), h.submit("high2", 2)
    h.stop()
    h.start()  # same Kernel (parent process): only the scheduler restarted
    listing = h.ask(ListTasks())
    assert [t["id"] for t in listing.queued] == [high1, high2, low]
    assert [t["id"] for t in listing.running] == [blocker]
    h.finish(blocker)
    assert h.started() == [blocker, high1]


def test_whole_system_restart_fails_running_and_holds_orphaned_tasks(asys, tmp_path):
    h = Harness(asys, tmp_path, max_concurrent=1)
    running = h.submit("was running")
    orphan = h.submit("queued, address owner")
    by_name = h.submit("queued, service owner", owner="runner")
    h.stop()
    env = lmdb.open(str(state_dir(tmp_path, "scheduler")), max_dbs=32)
    with env.begin(write=True) as txn:  # the Kernel this state was written under is gone
        txn.put(b"boot", pack("previous-boot"), db=env.open_db(b"meta", txn=txn))
    env.close()
    h.start()
    info = h.ask(GetTask(running))
    assert isinstance(info, TaskInfo)
    assert info.task["status"] == "Failed" and info.task["error"] == "interrupted by restart"
    # the service-owned task starts (its owner is found by name); the orphan is held
    assert h.started()[-1] == by_name
    assert h.ask(GetTask(orphan)).task["held"] is True
    assert [t["id"] for t in h.ask(ListTasks()).queued] == [orphan]
    h.finish(by_name)
    assert h.started()[-1] == by_name and h.stats().queued == 1  # held: not started
    reply = h.ask(Requeue(orphan))
    assert isinstance(reply, Failure) and reply.status == 409
    assert isinstance(h.ask(Requeue(orphan, owner=h.owner)), Requeued)
    assert h.started()[-1] == orphan
    retried = h.ask(Requeue(running, owner="runner", priority="High"))  # retry the interrupted one
    assert isinstance(retried, Requeued) and retried.attempts == 2
    h.finish(orphan)
    assert h.started()[-1] == running


def test_cancel_queued_and_running_tasks(asys, tmp_path):
    h = Harness(asys, tmp_path, max_concurrent=1)
    first, second, third = h.submit("a"), h.submit("b"), h.submit("c")
    assert h.ask(Cancel(second)) == TaskCancelled(second, "Queued")
    assert h.ask(Cancel(first)) == TaskCancelled(first, "Running")
    assert h.recorded(CancelTask) == [CancelTask(first, "cancelled")]  # the owner is told
    assert h.started() == [first, third]  # the cancelled queued task never starts
    assert h.ask(GetTask(second)).task["status"] == "Cancelled"
    late = h.finish(first, "Completed")  # the owner's late report does not resurrect it
    assert late == TaskRecorded(first, "Cancelled")
    again = h.ask(Cancel(first))
    assert isinstance(again, Failure) and again.status == 409
    missing = h.ask(Cancel("no-such-task"))
    assert isinstance(missing, Failure) and missing.status == 404


def test_requeue_gives_a_running_task_back_at_its_place(asys, tmp_path):
    h = Harness(asys, tmp_path, max_concurrent=1)
    first, second = h.submit("first"), h.submit("second")
    assert h.ask(Requeue(first)) == Requeued(first, 2)
    assert h.started() == [first, first]  # back in front of the later submission
    assert h.recorded(CancelTask) == []
    h.finish(first, "Failed", "boom")
    info = h.ask(GetTask(first)).task
    assert (info["status"], info["error"], info["attempts"]) == ("Failed", "boom", 2)
    assert h.started()[-1] == second
    queued = h.ask(Requeue(first))
    assert queued == Requeued(first, 3)
    assert isinstance(h.ask(Requeue(first)), Failure)  # already queued


def test_zombie_tasks_are_failed_and_owners_told(asys, tmp_path):
    h = Harness(asys, tmp_path, cls=FAST, zombie_timeout_secs=20)  # 20 clock s = 1 s real
    alive, zombie = h.submit("heartbeats"), h.submit("silent")
    deadline = time.monotonic() + 15
    while h.ask(GetTask(zombie)).task["status"] == "Running":
        assert time.monotonic() < deadline
        assert h.ask(TaskHeartbeat(alive)) == TaskRecorded(alive, "Running")
        time.sleep(0.1)
    info = h.ask(GetTask(zombie)).task
    assert (info["status"], info["error"]) == ("Failed", "zombie: no heartbeat")
    assert h.ask(GetTask(alive)).task["status"] == "Running"
    assert CancelTask(zombie, "zombie: no heartbeat") in h.recorded(CancelTask)
    appended = [r for m in h.recorded(object, of=h.auditor) for r in m.records]
    assert any(r.action == "zombie_reap" and r.resource == f"task:{zombie}" for r in appended)


def test_invalid_requests_fail_cleanly(asys, tmp_path):
    h = Harness(asys, tmp_path)
    for bad in (Submit("x", "Urgent", {}, h.owner), Submit("x", 7, {}, h.owner),
                Submit("x", "Low", {}, "no-such-service"), Submit("x", "Low", {"f": object()}, h.owner)):
        reply = h.ask(bad)
        assert isinstance(reply, Failure) and reply.status == 400, bad
    tid = h.submit("dup", task_id="mine-1")
    assert tid == "mine-1"
    dup = h.ask(Submit("dup", "Low", {}, h.owner, "mine-1"))
    assert isinstance(dup, Failure) and dup.status == 409
    assert h.ask(TaskFinished(tid, "Done")).status == 400
    assert h.ask(TaskFinished("nope", "Completed")).status == 404
    assert isinstance(h.ask(Ping()), Pong)


def test_plain_tells_from_owners_get_no_reply(asys, tmp_path):
    h = Harness(asys, tmp_path)
    tid = h.submit("t")
    asys.tell(h.addr, TaskHeartbeat(tid))
    asys.tell(h.addr, TaskFinished(tid, "Completed"))
    assert asys.listen(0.3) is None  # nothing came back to the sender
    assert h.ask(GetTask(tid)).task["status"] == "Completed"


# ------------------------------------------------------------- real runtime
async def wait_until(fn: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await fn()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.fixture
async def sched(client, auth, edge):
    """Restores the scheduler config afterwards and ends our owner actor."""
    before = (await (await client.get("/api/config", headers=auth)).json())["scheduler"]
    owner = edge.bridge.asys.createActor("tests.actors.Recorder")
    made: list[str] = []
    yield owner, made
    for tid in made:  # leave nothing queued or running behind
        try:
            await edge.bridge.ask("scheduler", Cancel(tid))
        except ApiError:
            pass
    await configure(client, auth, edge, **before)
    edge.bridge.asys.tell(owner, ActorExitRequest())


async def configure(client: Any, auth: dict[str, str], edge: Any, **values: int) -> None:
    r = await client.put("/api/config", json={"scheduler": values}, headers=auth)
    assert r.status == 200

    async def applied() -> bool:
        s = await edge.bridge.ask("scheduler", GetStats())
        return (s.max_concurrent == values.get("max_concurrent", s.max_concurrent)
                and s.rate_limit_per_minute == values.get("rate_limit_per_minute", s.rate_limit_per_minute))
    await wait_until(applied)


async def submit(edge: Any, made: list[str], owner: Any, description: str, priority: str = "Normal") -> str:
    reply = await edge.bridge.ask("scheduler", Submit(description, priority, {"k": 1}, owner))
    assert isinstance(reply, Submitted)
    made.append(reply.task_id)
    return reply.task_id


async def started(edge: Any, owner: Any) -> list[str]:
    return [m.task_id for m in await edge.bridge.ask_address(owner, "recorded") if isinstance(m, StartTask)]


async def test_endpoints_show_the_queue_and_live_stats(client, auth, edge, sched):
    owner, made = sched
    before = await edge.bridge.ask("scheduler", GetStats())
    await configure(client, auth, edge, max_concurrent=before.running + 1, rate_limit_per_minute=1000)
    running = await submit(edge, made, owner, "Refactor auth module")
    queued = [await submit(edge, made, owner, d, p) for d, p in
              (("Build TODO app", "High"), ("Write docs", "Low"), ("Fix bug", "Critical"))]
    r = await client.get("/api/scheduler/tasks", headers=auth)
    assert r.status == 200
    body = await r.json()
    assert set(body) == {"queued", "running"}
    mine = [t for t in body["queued"] if t["id"] in made]
    assert [t["id"] for t in mine] == [queued[2], queued[0], queued[1]]
    item = next(t for t in body["running"] if t["id"] == running)
    assert set(item) == {"id", "description", "priority", "status", "created_at", "error"}
    assert item["status"] == "Running" and item["priority"] == "Normal" and item["error"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", item["created_at"])
    assert mine[0] == {"id": queued[2], "description": "Fix bug", "priority": "Critical",
                       "status": "Queued", "created_at": mine[0]["created_at"], "error": None}
    r = await client.get("/api/scheduler/stats", headers=auth)
    stats = await r.json()
    assert set(stats) == {"queued", "running", "max_concurrent", "rate_limit_per_minute", "rate_remaining"}
    assert stats["max_concurrent"] == before.running + 1 and stats["rate_limit_per_minute"] == 1000
    assert stats["queued"] >= 3 and stats["running"] == before.running + 1
    assert stats["rate_remaining"] < 1000  # live: our start counts
    assert (await client.get("/api/scheduler/stats")).status == 401
    assert (await client.get("/api/scheduler/tasks")).status == 401


async def test_rate_limit_is_enforced_in_the_running_system(client, auth, edge, sched):
    owner, made = sched
    await configure(client, auth, edge, max_concurrent=200, rate_limit_per_minute=1000)
    s = await edge.bridge.ask("scheduler", GetStats())
    recent = 1000 - s.rate_remaining  # starts already in the 60 s window
    await configure(client, auth, edge, rate_limit_per_minute=recent + 2)
    ids = [await submit(edge, made, owner, f"rate {i}") for i in range(recent + 6)]
    s = await edge.bridge.ask("scheduler", GetStats())
    assert s.rate_remaining == 0 and s.running < s.max_concurrent
    got = await started(edge, owner)
    assert 2 <= len(got) <= len(ids) - 4 and got == ids[:len(got)]  # the rest wait for the window


async def test_sigkilled_scheduler_restores_its_queue_in_order(client, auth, edge, sched):
    owner, made = sched
    before = await edge.bridge.ask("scheduler", GetStats())
    await configure(client, auth, edge, max_concurrent=before.running + 1, rate_limit_per_minute=1000)
    blocker = await submit(edge, made, owner, "blocker")
    queued = [await submit(edge, made, owner, f"q{i}", p) for i, p in
              enumerate(("Low", "High", "Normal", "High", "Critical"))]

    async def mine() -> dict[str, list[str]]:
        body = await (await client.get("/api/scheduler/tasks", headers=auth)).json()
        return {k: [t["id"] for t in v if t["id"] in made] for k, v in body.items()}

    listed = await mine()
    expected = [queued[4], queued[1], queued[3], queued[2], queued[0]]
    assert listed == {"queued": expected, "running": [blocker]}
    old = await edge.bridge.ask("scheduler", Ping())
    os.kill(old.pid, signal.SIGKILL)

    async def new_pid() -> bool:
        try:
            pong = await edge.bridge.ask("scheduler", Ping(), timeout=1.0)
        except ApiError:
            return False
        return isinstance(pong, Pong) and pong.pid != old.pid
    await wait_until(new_pid)
    assert await mine() == listed  # same order; the running task is still running
    actor_view = await edge.bridge.ask("scheduler", ListTasks())
    assert [t["id"] for t in actor_view.queued if t["id"] in made] == expected
    await edge.bridge.ask("scheduler", TaskFinished(blocker, "Completed"))

    async def next_started() -> bool:
        return (await started(edge, owner))[-1:] == [queued[4]]
    await wait_until(next_started)  # the restarted scheduler still reaches the owner


def spec_example(heading: str) -> str:
    if not SPEC.exists():
        pytest.skip(f"contract not found at {SPEC}")
    text = SPEC.read_text()
    section = text[text.index(heading):]
    match = re.search(r"\*\*Example:\*\*\n```sh\n(.*?)```", section, re.S)
    assert match, heading
    return match.group(1).strip()


async def run_curl(command: str, port: int, token: str) -> tuple[int, str]:
    command = command.replace("http://127.0.0.1:4200", f"http://127.0.0.1:{port}")
    command = command.replace("YOUR_TOKEN", token) + " -s -w '\\n%{http_code}'"
    proc = await asyncio.create_subprocess_exec("bash", "-c", command, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    body, _, status = out.decode().rpartition("\n")
    return int(status), body


async def test_contract_curl_examples(client, token):
    import json
    for heading in ("### GET /api/scheduler/stats", "### GET /api/scheduler/tasks"):
        status, body = await run_curl(spec_example(heading), client.server.port, token)
        assert status == 200, (heading, body)
        data = json.loads(body)
        assert set(data) >= ({"queued", "running"} if "tasks" in heading else {"rate_remaining"})


def test_a_burst_of_messages_is_one_commit_and_replies_follow_it(asys, tmp_path):
    h = Harness(asys, tmp_path, max_concurrent=2)
    commits = h.ask(Ping()).stats["commits"]
    burst = tuple(Submit(f"b{i}", "Normal", {}, h.owner) for i in range(10))
    asys.tell(h.owner, ("send", h.addr, burst))  # all queued before the scheduler runs
    h.wait(lambda: len(h.recorded(Submitted)) == 10)
    assert h.ask(Ping()).stats["commits"] == commits + 1  # ten submits and two starts, one commit
    seen = [m for m in asys.ask(h.owner, "recorded", 10) if isinstance(m, (Submitted, StartTask))]
    ids = [m.task_id for m in seen if isinstance(m, Submitted)]
    # in handling order, each after the commit: a submit's reply before the start it caused
    assert [(type(m), m.task_id) for m in seen] == (
        [(Submitted, ids[0]), (StartTask, ids[0]), (Submitted, ids[1]), (StartTask, ids[1])]
        + [(Submitted, t) for t in ids[2:]])
