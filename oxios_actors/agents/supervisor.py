"""AgentSupervisor: forks one Agent actor (one OS process) per agent, through the
Scheduler, and is the only writer of agent and group records.

Lifecycle: SpawnAgent → record ``Queued`` + ``Submit`` to the scheduler →
``StartTask`` → Agent actor created, ``Running`` → ``AgentFinished`` (or a kill, a
deadline, the memory limit, or the process dying) → final status, counters,
events, ``TaskFinished`` to the scheduler, ``AgentResult`` to whoever asked.
After a restart, agents that were live are reconciled: failed with "interrupted
by restart" and their leftover processes killed.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import psutil
from thespian.actors import ActorAddress, ActorExitRequest

from ..messages import Ask, Configure, Failure, Ping, ServiceReady
from ..permissions.messages import EnsurePermissions
from ..scheduler.messages import Cancel, CancelTask, StartTask, Submit, Submitted, TaskFinished, TaskHeartbeat
from ..service import DEFERRED, ReplyTo, ServiceActor, rfc3339
from ..store import open_writer, pack, unpack
from . import records
from .messages import (
    AgentFinished,
    AgentResult,
    AgentSpec,
    AgentStarted,
    GroupMemberDone,
    GroupMembers,
    GroupResult,
    GroupSpawned,
    KillAgent,
    RunAgent,
    RunGroup,
    SpawnAgent,
    Spawned,
    SpawnGroup,
)

WATCH_SECS = 0.5
KILL_GRACE_SECS = 0.3


class AgentSupervisor(ServiceActor):
    name = "agents"

    def on_configure(self) -> None:
        # Agent processes are forked from this one: import the model client once here so
        # that no agent pays for importing it (measured: ~0.6 s per agent otherwise).
        try:
            import openai  # noqa: F401
        except ImportError:
            pass
        self.env = open_writer(self.home, records.DOMAIN)
        self.agents_db = self.env.open_db(records.AGENTS_DB.encode())
        self.groups_db = self.env.open_db(records.GROUPS_DB.encode())
        self.counters_db = self.env.open_db(records.COUNTERS_DB.encode())
        self.nodes_db = self.env.open_db(records.NODES_DB.encode())
        self.actors: dict[str, ActorAddress] = {}  # agent id -> live actor
        self.by_task: dict[str, str] = {}  # task id -> agent id
        self.notify: dict[str, Any] = {}  # agent id -> who gets the AgentResult
        self.pending_spawns: dict[str, ReplyTo | None] = {}
        self.group_actors: dict[str, ActorAddress] = {}
        self.group_notify: dict[str, Any] = {}
        self.home_node = "home"
        self.nodes: dict[str, dict[str, Any]] = {}  # node name -> {name, capabilities, admin, ...}
        self.probes: dict[str, dict[str, Any]] = {}  # node name -> its watch actor and last answer
        with self.env.begin(write=True, db=self.nodes_db) as txn:
            txn.drop(self.nodes_db, delete=False)  # membership is re-announced by the convention
        self.reconcile()
        self.notifyOnSystemRegistrationChanges(True)
        self.after(WATCH_SECS, "watch")

    # -- storage --------------------------------------------------------------------
    def load(self, agent_id: str) -> dict[str, Any] | None:
        with self.env.begin(db=self.agents_db) as txn:
            raw = txn.get(agent_id.encode())
        return None if raw is None else unpack(raw)

    def save(self, record: dict[str, Any], counters: dict[str, int] | None = None) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(record["id"].encode(), pack(record), db=self.agents_db)
            for name, delta in (counters or {}).items():
                raw = txn.get(name.encode(), db=self.counters_db)
                value = max(0, (unpack(raw) if raw else 0) + delta)
                txn.put(name.encode(), pack(value), db=self.counters_db)

    def save_group(self, group: dict[str, Any]) -> None:
        with self.env.begin(write=True, db=self.groups_db) as txn:
            txn.put(group["id"].encode(), pack(group))

    def load_group(self, group_id: str) -> dict[str, Any] | None:
        with self.env.begin(db=self.groups_db) as txn:
            raw = txn.get(group_id.encode())
        return None if raw is None else unpack(raw)

    def reconcile(self) -> None:
        """Nothing that was live before this process started is still being worked on."""
        with self.env.begin(db=self.agents_db) as txn:
            live = [r for r in (unpack(v) for _, v in txn.cursor().iternext()) if r["status"] in records.LIVE]
        for record in live:
            self.kill_process(record)
            if record.get("task_id"):
                self.ask_service("scheduler", "cancel", Cancel(record["task_id"]))
            self.finalize(record, "Failed", error="interrupted by restart")
        with self.env.begin(db=self.groups_db) as txn:
            groups = [unpack(v) for _, v in txn.cursor().iternext()]
        for group in groups:
            if group["status"] in ("pending", "running"):
                group["status"] = "failed"
                self.save_group(group)

    # -- spawning -------------------------------------------------------------------
    def on_SpawnAgent(self, msg: SpawnAgent) -> Any:
        notify = msg.notify if msg.notify is not None else (self.reply_to.address if self.reply_to else None)
        return self.spawn(msg.spec, notify, msg.group_id, self.reply_to)

    def spawn(self, spec: AgentSpec, notify: Any, group_id: str | None, reply_to: ReplyTo | None) -> Any:
        if not spec.goal.strip():
            return Failure(400, "an agent needs a goal")
        agent_id = spec.agent_id or records.new_agent_id()
        if self.load(agent_id) is not None:
            return Failure(409, f"agent {agent_id} already exists")
        record = {"id": agent_id, "name": (spec.name or spec.goal)[:120], "status": "Starting",
                  "created_at": rfc3339(), "seed_id": spec.seed_id, "task_id": None, "group_id": group_id,
                  "node": None, "error": None, "spec": _spec_dict(spec)}
        self.save(record, {"forked": 1, "active": 1})
        self.notify[agent_id] = notify
        self.ask_service("permissions", f"perm:{agent_id}", EnsurePermissions(agent_id))
        self.audit(agent_id, "agent_created", spec.seed_id or "", True, str(record["name"]))
        self.publish("agent_created", agent_id=agent_id, name=record["name"], seed_id=spec.seed_id,
                     session_id=spec.session_id)
        submit = Submit(f"Run agent {agent_id}: {record['name']}"[:200], spec.priority,
                        {"agent_id": agent_id, **spec.requirements}, "agents")
        self.pending_spawns[agent_id] = reply_to
        if not self.ask_service("scheduler", f"submit:{agent_id}", submit):
            self.pending_spawns.pop(agent_id, None)
            self.finalize(record, "Failed", error="the scheduler is not available")
            return Failure(503, "the scheduler is not available")
        return DEFERRED

    def on_answer(self, rid: str, reply: Any) -> None:
        kind, _, agent_id = rid.partition(":")
        if kind == "probe":
            self.probe_answered(agent_id)
            return
        if kind == "perm":
            from ..permissions.messages import PermissionsRecord
            record = self.load(agent_id)
            if record is not None and isinstance(reply, PermissionsRecord):
                # The agent's own permissions bound its process (set them before it runs).
                record["limits"] = {k: reply.record[k] for k in ("max_execution_time_secs", "max_memory_mb")}
                self.save(record)
            return
        if kind != "submit":
            return
        reply_to = self.pending_spawns.pop(agent_id, None)
        record = self.load(agent_id)
        if record is None:
            return
        if isinstance(reply, Submitted):
            record["task_id"] = reply.task_id
            if record["status"] == "Starting":
                record["status"] = "Queued"
            self.by_task[reply.task_id] = agent_id
            self.save(record)
            self.reply(reply_to, Spawned(agent_id, reply.task_id))
        else:
            error = reply.error if isinstance(reply, Failure) else f"scheduler refused: {reply!r}"
            self.finalize(record, "Failed", error=error)
            self.reply(reply_to, Failure(503, error))

    def on_StartTask(self, msg: StartTask) -> None:
        agent_id = self.by_task.get(msg.task_id) or str(msg.requirements.get("agent_id", ""))
        record = self.load(agent_id) if agent_id else None
        if record is None or record["status"] not in ("Starting", "Queued"):
            self.tell_scheduler(TaskFinished(msg.task_id, "Cancelled", "agent is no longer waiting"))
            return
        self.by_task[msg.task_id] = agent_id
        wanted = {k: v for k, v in msg.requirements.items() if k != "agent_id"}
        node = self.place(wanted)
        if node is None:
            self.finalize(record, "Failed", error=f"no node offers {sorted(wanted)}")
            return
        addr = self.createActor("oxios_actors.agents.agent.Agent",
                                targetActorRequirements={"oxios.node": node} if self.workers() else None)
        self.actors[agent_id] = addr
        record.update(status="Running", started_at=rfc3339(), task_id=msg.task_id, node=node)
        self.count_on(node, +1)
        perms = self.section("security")
        limits = record.get("limits") or {"max_execution_time_secs": perms.get("max_execution_time_secs", 300),
                                          "max_memory_mb": perms.get("max_memory_mb", 512)}
        record["limits"] = limits
        self.save(record)
        self.send(addr, Configure(agent_id, self.home, self.directory, self.config))
        self.send(addr, RunAgent(agent_id, _spec_from(record["spec"]), limits))
        self.audit(agent_id, "agent_started", msg.task_id, True, None)
        self.publish("agent_started", agent_id=agent_id, task_id=msg.task_id,
                     session_id=record["spec"].get("session_id"))

    def on_ServiceReady(self, msg: ServiceReady) -> None:
        """An agent actor configured itself (its pid comes with AgentStarted)."""

    def on_AgentStarted(self, msg: AgentStarted) -> None:
        record = self.load(msg.agent_id)
        if record is not None and record["status"] == "Running":
            record.update(pid=msg.pid, pid_started=psutil.Process(msg.pid).create_time())
            self.save(record)

    def on_AgentFinished(self, msg: AgentFinished) -> None:
        record = self.load(msg.agent_id)
        if record is None or record["status"] not in records.LIVE:
            return
        self.finalize(record, msg.status, msg.output, msg.error, msg.usage)

    # -- ending -----------------------------------------------------------------------
    def finalize(self, record: dict[str, Any], status: str, output: str = "", error: str | None = None,
                 usage: dict[str, int] | None = None) -> None:
        agent_id = record["id"]
        was_live = record["status"] in records.LIVE
        record.update(status=status, error=error, finished_at=rfc3339(), output_summary=output[:2000],
                      usage=usage or {})
        counter = {"Completed": "completed", "Failed": "failed", "Killed": "killed"}[status]
        self.save(record, {counter: 1, "active": -1 if was_live else 0})
        addr = self.actors.pop(agent_id, None)
        if addr is not None:
            self.send(addr, ActorExitRequest())
            self.count_on(record.get("node"), -1)
        if record.get("task_id"):
            self.by_task.pop(record["task_id"], None)
            sched = {"Completed": "Completed", "Failed": "Failed", "Killed": "Cancelled"}[status]
            self.tell_scheduler(TaskFinished(record["task_id"], sched, error))
        event = "agent_failed" if status == "Failed" else "agent_stopped"
        self.audit(agent_id, f"agent_{status.lower()}", record.get("task_id") or "", status != "Failed", error)
        self.publish(event, agent_id=agent_id, status=status, error=error,
                     session_id=(record.get("spec") or {}).get("session_id"))
        result = AgentResult(agent_id, status, output, error, record.get("seed_id"), record.get("group_id"),
                             usage or {})
        target = self.notify.pop(agent_id, None)
        if target is not None:
            self.send(target, result)
        group_addr = self.group_actors.get(record.get("group_id") or "")
        if group_addr is not None and group_addr != target:
            self.send(group_addr, result)

    def tell_scheduler(self, msg: Any) -> None:
        sched = self.directory.get("scheduler")
        if sched is not None:
            self.send(sched, msg)

    def kill_process(self, record: dict[str, Any]) -> None:
        """SIGKILL an agent's process and everything it started (its tools)."""
        pid = record.get("pid")
        if not pid or record.get("node") not in (None, self.home_node):
            return  # a remote agent ends with its ActorExitRequest (its tools die with it)
        try:
            proc = psutil.Process(pid)
            if abs(proc.create_time() - float(record.get("pid_started") or 0)) > 1.0:
                return  # the pid was reused by something else
            for child in proc.children(recursive=True):
                try:
                    os.killpg(child.pid, signal.SIGKILL) if os.getpgid(child.pid) == child.pid else child.kill()
                except (ProcessLookupError, psutil.Error):
                    pass
            proc.kill()
        except (psutil.Error, ProcessLookupError):
            pass

    def on_KillAgent(self, msg: KillAgent) -> Any:
        record = self.load(msg.agent_id)
        if record is None:
            return Failure(404, f"agent {msg.agent_id} not found")
        if record["status"] not in records.LIVE:
            return {"agent_id": msg.agent_id, "status": record["status"]}
        self.stop_agent(record, "Killed", msg.reason)
        return {"agent_id": msg.agent_id, "status": "Killed"}

    def stop_agent(self, record: dict[str, Any], status: str, reason: str) -> None:
        if record["status"] == "Running":
            self.kill_process(record)  # for real, tools included, no waiting on the agent
        elif record.get("task_id"):
            self.ask_service("scheduler", "cancel", Cancel(record["task_id"]))
            record["task_id"] = None  # the cancel settles the scheduler's side
        self.finalize(record, status, error=reason)

    def on_child_exited(self, child: ActorAddress) -> None:
        for agent_id, addr in list(self.actors.items()):
            if addr == child:
                record = self.load(agent_id)
                if record is not None and record["status"] in records.LIVE:
                    self.actors.pop(agent_id, None)
                    self.finalize(record, "Failed", error="agent process exited unexpectedly")
                return
        for group_id, addr in list(self.group_actors.items()):
            if addr == child:
                self.group_actors.pop(group_id, None)

    def on_CancelTask(self, msg: CancelTask) -> None:
        """The scheduler cancelled (or reaped) a running task: its agent stops."""
        agent_id = self.by_task.get(msg.task_id)
        record = self.load(agent_id) if agent_id else None
        if record is not None and record["status"] in records.LIVE:
            record["task_id"] = None  # the scheduler's side is already final
            self.stop_agent(record, "Killed", f"cancelled by the scheduler: {msg.reason}")

    def on_wakeup(self, payload: Any) -> None:
        if payload != "watch":
            return
        self.after(WATCH_SECS, "watch")
        self.heartbeat_nodes()
        now = time.monotonic()
        zombie = float(self.section("scheduler").get("zombie_timeout_secs", 300))
        if now - getattr(self, "last_heartbeat", 0.0) >= max(1.0, zombie / 4):
            self.last_heartbeat = now  # running tasks are alive: no zombie reaping
            for task_id, agent_id in list(self.by_task.items()):
                if agent_id in self.actors:
                    self.tell_scheduler(TaskHeartbeat(task_id))
        limit_mb = int(self.section("security").get("max_memory_mb", 512))
        for agent_id in list(self.actors):
            record = self.load(agent_id)
            if record is None or record["status"] != "Running" or not record.get("pid"):
                continue
            try:
                rss_mb = psutil.Process(record["pid"]).memory_info().rss / 2**20
            except psutil.Error:
                continue
            cap = int(record.get("limits", {}).get("max_memory_mb", limit_mb))
            if rss_mb > cap:
                self.stop_agent(record, "Failed", f"memory limit exceeded ({rss_mb:.0f} MB > {cap} MB)")

    # -- groups --------------------------------------------------------------------------
    def on_SpawnGroup(self, msg: SpawnGroup) -> Any:
        if not msg.members:
            return Failure(400, "a group needs at least one member")
        group_id = records.new_group_id()
        group = {"id": group_id, "name": msg.name[:120], "agent_count": len(msg.members), "status": "pending",
                 "created_at": rfc3339(), "parent_seed_id": msg.parent_seed_id, "members": []}
        self.save_group(group)
        addr = self.createActor("oxios_actors.agents.group.AgentGroup")
        self.group_actors[group_id] = addr
        self.group_notify[group_id] = msg.notify if msg.notify is not None else (
            self.reply_to.address if self.reply_to else None)
        self.send(addr, Configure(group_id, self.home, self.directory, self.config))
        self.send(addr, RunGroup(group_id, msg.members, msg.parent_seed_id))
        self.publish("agent_group_created", group_id=group_id, name=group["name"], agent_count=len(msg.members))
        self.audit("agents", "agent_group_created", group_id, True, str(group["name"]))
        return GroupSpawned(group_id)

    def on_GroupMembers(self, msg: GroupMembers) -> None:
        group = self.load_group(msg.group_id)
        if group is None:
            return
        group["members"] = [{"agent_id": a, "status": "Queued", "result": None, "error": None}
                            for a in msg.agent_ids]
        group["status"] = "running"
        self.save_group(group)

    def on_GroupMemberDone(self, msg: GroupMemberDone) -> None:
        group = self.load_group(msg.group_id)
        if group is None:
            return
        r = msg.result
        for member in group["members"]:
            if member["agent_id"] == r.agent_id:
                member.update(status=r.status, result=r.output[:2000], error=r.error)
        self.publish("agent_group_member_completed", group_id=msg.group_id, agent_id=r.agent_id, status=r.status)
        finished = [m for m in group["members"] if m["status"] in records.FINAL]
        if len(finished) == group["agent_count"]:
            group["status"] = "completed" if all(m["status"] == "Completed" for m in finished) else "failed"
        self.save_group(group)
        if group["status"] in ("completed", "failed"):
            addr = self.group_actors.pop(msg.group_id, None)
            results = tuple(AgentResult(m["agent_id"], m["status"], m["result"] or "", m["error"],
                                        group.get("parent_seed_id"), msg.group_id) for m in group["members"])
            target = self.group_notify.pop(msg.group_id, None)
            if target is not None:
                self.send(target, GroupResult(msg.group_id, group["status"], results))
            if addr is not None:
                self.send(addr, ActorExitRequest())

    # -- cluster -------------------------------------------------------------------------
    def workers(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes.values() if n["capabilities"].get("oxios.worker")]

    def place(self, wanted: dict[str, Any]) -> str | None:
        """Least-loaded worker that offers every wanted capability; the home node when
        there is no worker and nothing special is wanted."""
        from ..cluster.node import capability_check

        fit = [n for n in self.workers() if capability_check(n["capabilities"], wanted)]
        if fit:
            return min(fit, key=lambda n: (n.get("agents", 0), n["name"]))["name"]
        if not wanted or capability_check({"oxios.home": True, "oxios.node": self.home_node}, wanted):
            return self.home_node
        return None

    def count_on(self, node: str | None, delta: int) -> None:
        if node in self.nodes:
            self.nodes[node]["agents"] = max(0, self.nodes[node].get("agents", 0) + delta)
            self.save_node(self.nodes[node])

    def save_node(self, node: dict[str, Any]) -> None:
        with self.env.begin(write=True, db=self.nodes_db) as txn:
            txn.put(node["name"].encode(), pack({k: v for k, v in node.items() if k != "address"}))

    def on_ActorSystemConventionUpdate(self, msg: Any) -> None:
        caps = {k: v for k, v in (msg.remoteCapabilities or {}).items()
                if isinstance(v, (str, int, float, bool))}
        name = str(caps.get("oxios.node") or msg.remoteAdminAddress)
        if msg.remoteAdded:
            node = {"name": name, "capabilities": caps, "admin": str(msg.remoteAdminAddress),
                    "joined_at": rfc3339(), "last_check_in": rfc3339(), "agents": 0, "status": "up"}
            self.nodes[name] = node
            self.save_node(node)
            # A watch actor on the node answers our heartbeats: silence means the node is gone.
            probe = self.createActor("oxios_actors.cluster.node.NodeWarden",
                                     targetActorRequirements={"oxios.node": name})
            self.probes[name] = {"probe": probe, "admin": msg.remoteAdminAddress, "pong": time.monotonic(),
                                 "saved": time.monotonic()}
            self.audit("cluster", "node_joined", name, True, None)
            return
        if name in self.nodes:
            self.lose_node(name, "left the convention")

    def lose_node(self, name: str, why: str) -> None:
        self.nodes.pop(name, None)
        probe = self.probes.pop(name, None)
        with self.env.begin(write=True, db=self.nodes_db) as txn:
            txn.delete(name.encode())
        if probe is not None:
            self.deRegisterRemoteSystem(probe["admin"])  # no more placement there until it rejoins
        self.audit("cluster", "node_lost", name, False, why)
        self.node_lost(name)

    def heartbeat_nodes(self) -> None:
        cfg = self.section("cluster")
        timeout = float(cfg.get("node_timeout_secs", 5))
        now = time.monotonic()
        for name, probe in list(self.probes.items()):
            if now - probe["pong"] > timeout:
                self.lose_node(name, f"no heartbeat for {timeout:g}s")
                continue
            self.send(probe["probe"], Ask(f"probe:{name}", Ping()))

    def probe_answered(self, name: str) -> None:
        probe = self.probes.get(name)
        if probe is None or name not in self.nodes:
            return
        probe["pong"] = time.monotonic()
        if probe["pong"] - probe["saved"] > 5.0:  # persist the check-in now and then, not every beat
            probe["saved"] = probe["pong"]
            self.nodes[name]["last_check_in"] = rfc3339()
            self.save_node(self.nodes[name])

    def node_lost(self, name: str) -> None:
        """Every agent that was running on the lost node fails ("node lost") and, per
        policy, its task is run again by a new agent; whoever waited for the old one
        gets the new one's result."""
        requeue = bool(self.section("cluster").get("requeue_on_node_loss", True))
        for agent_id in list(self.actors):
            record = self.load(agent_id)
            if record is None or record.get("node") != name or record["status"] not in records.LIVE:
                continue
            self.actors.pop(agent_id, None)
            notify = self.notify.pop(agent_id, None)
            record["requeued"] = requeue
            self.finalize(record, "Failed", error="node lost")
            if requeue:
                spec = _spec_from({**record["spec"], "agent_id": None})
                self.spawn(spec, notify, record.get("group_id"), None)

    def stats(self) -> dict[str, Any]:
        return {"running": len(self.actors), "groups": len(self.group_actors), "nodes": sorted(self.nodes)}

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.env.close()


def _spec_dict(spec: AgentSpec) -> dict[str, Any]:
    from dataclasses import asdict
    d = asdict(spec)
    d["context"] = list(spec.context)
    return d


def _spec_from(d: dict[str, Any]) -> AgentSpec:
    return AgentSpec(**{**d, "context": tuple(d.get("context") or ())})


__all__ = ["AgentSupervisor", "time"]
