"""Kernel: the root supervisor.  Starts the service actors, hands each the
directory of the others, restarts any that dies, and ends the whole actor
system if the launcher that owns it disappears (no orphans)."""

from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
from thespian.actors import ActorAddress

from .messages import Ask, ConfigChanged, Configure, DirectoryUpdate, Failure, Ok, ServiceReady
from .service import DEFERRED, ReplyTo, ServiceActor
from .system import config as schema

log = logging.getLogger("oxios.kernel")

KERNEL_NAME = "oxios-kernel"

#: Service name -> actor class, in start order.
SERVICES: dict[str, str] = {
    "events": "oxios_actors.events.bus.EventBus",
    "audit": "oxios_actors.audit.ledger.AuditLedger",
    "permissions": "oxios_actors.permissions.service.Permissions",
    "approvals": "oxios_actors.approvals.service.Approvals",
    "tools": "oxios_actors.tools.host.ToolHost",
    "config": "oxios_actors.system.config_service.ConfigService",
    "resources": "oxios_actors.system.resources.ResourceMonitor",
    "scheduler": "oxios_actors.scheduler.actor.Scheduler",
    "budget": "oxios_actors.budget.ledger.BudgetLedger",
    "agents": "oxios_actors.agents.supervisor.AgentSupervisor",
    "personas": "oxios_actors.personas.service.Personas",
    "orchestrator": "oxios_actors.orchestrator.service.Orchestrator",
    "cron": "oxios_actors.cron.service.CronService",
    "memory": "oxios_actors.memory.service.Memory",
    "workspace": "oxios_actors.workspace.actor.Workspace",
    "programs": "oxios_actors.programs.registry.ProgramRegistry",
}

RESTART_WINDOW_SECS = 60.0
MAX_RESTARTS_IN_WINDOW = 10
WATCH_INTERVAL_SECS = 1.0
CONFIG_ACK_TIMEOUT_SECS = 3.0


@dataclass(frozen=True)
class Boot:
    home: str
    launcher_pid: int
    launcher_started: float


@dataclass(frozen=True)
class Booted:
    directory: dict[str, Any]
    generation: int
    pid: int
    pgid: int


@dataclass(frozen=True)
class GetDirectory:
    pass


@dataclass(frozen=True)
class WatchDirectory:
    """Send the sender a ``Directory`` now and after every change, for ``lease_secs``."""

    lease_secs: float = 30.0


@dataclass(frozen=True)
class Directory:
    services: dict[str, Any]
    generation: int
    restarts: dict[str, int] = field(default_factory=dict)


class Kernel(ServiceActor):
    name = "kernel"

    def __init__(self) -> None:
        super().__init__()
        self.addresses: dict[str, ActorAddress] = {}
        self.ready: dict[str, bool] = {}
        self.pids: dict[str, int] = {}
        self.generation = 0
        self.restarts: dict[str, int] = {}
        self.restart_times: dict[str, list[float]] = {}
        self.boot_reply: ReplyTo | None = None
        self.launcher: tuple[int, float] | None = None
        self.stopping = False
        self.watchers: dict[str, tuple[ActorAddress, float]] = {}
        self.config_round = 0
        self.config_pending: set[str] = set()
        self.config_reply: ReplyTo | None = None

    # -- boot -------------------------------------------------------------
    def on_Boot(self, msg: Boot) -> Any:
        if self.addresses:
            return Booted(self.published_directory(), self.generation, os.getpid(), os.getpgid(0))
        self.home = msg.home
        self.config = schema.load(self.home)
        self.launcher = (msg.launcher_pid, msg.launcher_started)
        self.boot_reply = self.reply_to
        for name in SERVICES:
            self.start_service(name)
        self.after(WATCH_INTERVAL_SECS, "watch")
        return DEFERRED

    def published_directory(self) -> dict[str, Any]:
        return {**self.addresses, "kernel": self.myAddress}

    def start_service(self, name: str) -> None:
        addr = self.createActor(SERVICES[name])
        self.addresses[name] = addr
        self.ready[name] = False
        self.send(addr, Configure(name, self.home, self.published_directory(), self.config))

    def on_ServiceReady(self, msg: ServiceReady) -> None:
        self.ready[msg.name] = True
        self.pids[msg.name] = msg.pid
        self.generation += 1
        update = DirectoryUpdate(self.published_directory(), self.generation)
        for name, addr in self.addresses.items():
            if name != msg.name:
                self.send(addr, update)
        now = time.monotonic()
        for key, (watcher, expires) in list(self.watchers.items()):
            if expires < now:
                del self.watchers[key]
            else:
                self.send(watcher, self.on_GetDirectory(GetDirectory()))
        if self.boot_reply is not None and all(self.ready.values()):
            self.reply(self.boot_reply,
                       Booted(self.published_directory(), self.generation, os.getpid(), os.getpgid(0)))
            self.boot_reply = None

    # -- supervision ------------------------------------------------------
    def on_stop(self) -> None:
        self.stopping = True

    def on_child_exited(self, child: ActorAddress) -> None:
        if self.stopping:
            return
        for name, addr in list(self.addresses.items()):
            if addr == child:
                now = time.monotonic()
                recent = [t for t in self.restart_times.get(name, []) if now - t < RESTART_WINDOW_SECS]
                if len(recent) >= MAX_RESTARTS_IN_WINDOW:
                    log.error("service %s keeps dying; retrying in %ss", name, RESTART_WINDOW_SECS)
                    self.ready[name] = False
                    self.after(RESTART_WINDOW_SECS, ("restart", name))
                    return
                self.restart_times[name] = recent + [now]
                self.restarts[name] = self.restarts.get(name, 0) + 1
                log.warning("service %s exited; restarting (restart #%d)", name, self.restarts[name])
                self.start_service(name)
                return

    def on_wakeup(self, payload: Any) -> None:
        if payload == "watch":
            if not self.launcher_alive():
                log.error("launcher is gone; ending the actor system")
                os.killpg(os.getpgid(0), signal.SIGKILL)
            self.after(WATCH_INTERVAL_SECS, "watch")
        elif isinstance(payload, tuple) and payload[0] == "restart":
            self.start_service(payload[1])
        elif isinstance(payload, tuple) and payload == ("cfg-timeout", self.config_round):
            if self.config_pending:
                log.warning("config not acknowledged by %s", ", ".join(sorted(self.config_pending)))
            self.config_applied()

    def launcher_alive(self) -> bool:
        if self.launcher is None:
            return True
        pid, started = self.launcher
        try:
            return abs(psutil.Process(pid).create_time() - started) < 1.0
        except psutil.Error:
            return False

    # -- queries ----------------------------------------------------------
    def on_GetDirectory(self, msg: GetDirectory) -> Directory:
        return Directory(self.published_directory(), self.generation, dict(self.restarts))

    def on_WatchDirectory(self, msg: WatchDirectory) -> Directory:
        assert self.reply_to is not None
        addr = self.reply_to.address
        self.watchers[str(addr)] = (addr, time.monotonic() + max(1.0, msg.lease_secs))
        return self.on_GetDirectory(GetDirectory())

    def on_config_changed(self) -> Any:
        """The ConfigService persisted a new config: every other service hot-reloads,
        and the ConfigService hears back only when all have (or after a timeout), so a
        PUT /api/config answered 200 is in effect everywhere."""
        self.config_round += 1
        n = self.config_round
        update = ConfigChanged(self.config)
        self.config_pending = {name for name in self.addresses if name != "config" and self.ready.get(name)}
        self.config_reply = self.reply_to
        for name in self.config_pending:
            self.send(self.addresses[name], Ask(f"cfg:{n}:{name}", update))
        if not self.config_pending:
            return Ok({"service": self.name})
        self.after(CONFIG_ACK_TIMEOUT_SECS, ("cfg-timeout", n))
        return DEFERRED

    def on_answer(self, rid: str, reply: Any) -> None:
        kind, _, rest = rid.partition(":")
        n, _, name = rest.partition(":")
        if kind == "cfg" and n == str(self.config_round):
            self.config_pending.discard(name)
            if not self.config_pending:
                self.config_applied()

    def config_applied(self) -> None:
        if self.config_reply is not None:
            self.reply(self.config_reply, Ok({"service": self.name}))
            self.config_reply = None

    def stats(self) -> dict[str, Any]:
        return {"generation": self.generation, "restarts": dict(self.restarts),
                "pids": dict(self.pids), "ready": dict(self.ready)}


__all__ = ["Kernel", "Boot", "Booted", "GetDirectory", "Directory", "KERNEL_NAME", "SERVICES",
           "Failure"]
