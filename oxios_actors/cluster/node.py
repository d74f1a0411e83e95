"""NodeWarden: the one actor a worker node starts for itself.

It proves the node's admin works, reports the process group to the launcher, and
ends the node's actor system if the launcher that owns it disappears (the same
no-orphans rule the Kernel applies on the home node)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

import psutil

from ..service import ServiceActor

WATCH_SECS = 1.0


@dataclass(frozen=True)
class Warden:
    launcher_pid: int
    launcher_started: float


@dataclass(frozen=True)
class Warded:
    pid: int
    pgid: int


def capability_check(capabilities: dict[str, Any], requirements: dict[str, Any] | None) -> bool:
    """An actor with ``requirements`` may run on a node whose capabilities match them all."""
    return all(capabilities.get(k) == v for k, v in (requirements or {}).items())


class NodeWarden(ServiceActor):
    name = "warden"

    @staticmethod
    def actorSystemCapabilityCheck(capabilities: dict[str, Any], requirements: dict[str, Any]) -> bool:
        return capability_check(capabilities, requirements)

    def on_Warden(self, msg: Warden) -> Warded:
        self.launcher = (msg.launcher_pid, msg.launcher_started)
        self.after(WATCH_SECS, "watch")
        return Warded(os.getpid(), os.getpgid(0))

    def on_wakeup(self, payload: Any) -> None:
        if payload != "watch":
            return
        pid, started = self.launcher
        try:
            alive = abs(psutil.Process(pid).create_time() - started) < 1.0
        except psutil.Error:
            alive = False
        if not alive:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        self.after(WATCH_SECS, "watch")
