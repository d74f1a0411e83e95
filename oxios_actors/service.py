"""ServiceActor: the base of every Oxios actor.

It unwraps ``Ask`` envelopes, dispatches each message to ``on_<MessageType>``,
turns exceptions into ``Failure(500, ...)`` replies (never an exception across
the actor boundary), and keeps the directory of sibling services that the
Kernel hands out.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from thespian.actors import (
    Actor,
    ActorAddress,
    ActorExitRequest,
    ChildActorExited,
    PoisonMessage,
    WakeupMessage,
)

from . import netguard  # noqa: F401  (re-installs the bind guard in spawned processes)
from .messages import (
    Answer,
    Ask,
    ConfigChanged,
    Configure,
    DirectoryUpdate,
    Failure,
    Ok,
    Ping,
    Pong,
    ServiceReady,
)

log = logging.getLogger("oxios")


@dataclass(frozen=True)
class ReplyTo:
    """Where a deferred reply must go (sender and, for asks, the request id)."""

    address: ActorAddress
    rid: str | None


class Deferred:
    """Returned by a handler that will answer later through ``ServiceActor.reply``."""


DEFERRED = Deferred()


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(ts: datetime | None = None) -> str:
    return (ts or utcnow()).isoformat(timespec="seconds")


class ServiceActor(Actor):
    name = "service"

    def __init__(self) -> None:
        super().__init__()
        self.home: str = ""
        self.directory: dict[str, ActorAddress] = {}
        self.config: dict[str, Any] = {}
        self.reply_to: ReplyTo | None = None

    # -- dispatch ---------------------------------------------------------
    def receiveMessage(self, msg: Any, sender: ActorAddress) -> None:
        rid = None
        if isinstance(msg, Ask):
            rid, msg = msg.rid, msg.request
        self.reply_to = ReplyTo(sender, rid)
        try:
            reply = self._dispatch(msg, sender)
        except Exception as exc:  # the boundary: log, answer, keep running
            log.error("%s failed on %s: %s\n%s", self.name, type(msg).__name__, exc,
                      traceback.format_exc())
            reply = Failure(500, f"internal error in {self.name}: {exc}")
        if reply is not None and reply is not DEFERRED:
            self.reply(self.reply_to, reply)

    def reply(self, to: ReplyTo | None, value: Any) -> None:
        if to is None:
            return
        self.send(to.address, Answer(to.rid, value) if to.rid is not None else value)

    def _dispatch(self, msg: Any, sender: ActorAddress) -> Any:
        if isinstance(msg, Configure):
            self.name, self.home = msg.name, msg.home
            self.directory, self.config = dict(msg.directory), dict(msg.config)
            self.on_configure()
            return ServiceReady(self.name, os.getpid())
        if isinstance(msg, DirectoryUpdate):
            self.directory = dict(msg.directory)
            return None
        if isinstance(msg, ConfigChanged):
            self.config = dict(msg.config)
            ack = self.on_config_changed()
            return ack if ack is not None else Ok({"service": self.name})
        if isinstance(msg, WakeupMessage):
            self.on_wakeup(msg.payload)
            return None
        if isinstance(msg, ActorExitRequest):
            self.on_stop()
            return None
        if isinstance(msg, ChildActorExited):
            self.on_child_exited(msg.childAddress)
            return None
        if isinstance(msg, PoisonMessage):
            log.warning("%s: poison message %r", self.name, msg.poisonMessage)
            return None
        if isinstance(msg, Ping):
            return Pong(self.name, os.getpid(), self.stats())
        if isinstance(msg, Answer):
            self.on_answer(msg.rid, msg.reply)
            return None
        handler: Callable[[Any], Any] | None = getattr(self, "on_" + type(msg).__name__, None)
        if handler is None:
            if self.reply_to is None or self.reply_to.rid is None:
                # An unasked-for message (e.g. the reply to a tell) is dropped, never answered:
                # answering it could start an endless exchange of "not understood" replies.
                log.debug("%s: ignoring %s", self.name, type(msg).__name__)
                return None
            return Failure(400, f"{self.name} does not understand {type(msg).__name__}")
        return handler(msg)

    # -- hooks ------------------------------------------------------------
    def on_configure(self) -> None:
        """Open state (LMDB) and start timers; called in the actor's own process."""

    def on_config_changed(self) -> Any:
        """Apply what can be hot-reloaded; the returned ack tells the Kernel it is done."""
        return Ok({"service": self.name})

    def on_wakeup(self, payload: Any) -> None:
        pass

    def on_stop(self) -> None:
        pass

    def on_child_exited(self, child: ActorAddress) -> None:
        pass

    def on_answer(self, rid: str, reply: Any) -> None:
        """The reply to an ``Ask(rid, ...)`` this actor sent to another service."""

    def stats(self) -> dict[str, Any]:
        """A frozen snapshot of this service's counters (for status and metrics)."""
        return {}

    # -- helpers ----------------------------------------------------------
    def section(self, name: str) -> dict[str, Any]:
        value = self.config.get(name, {})
        return value if isinstance(value, dict) else {}

    def after(self, seconds: float, payload: Any) -> None:
        self.wakeupAfter(timedelta(seconds=seconds), payload)

    def audit(self, agent_name: str, action: str, resource: str = "", allowed: bool = True,
              reason: str | None = None) -> None:
        """Append one record to the audit chain (fire and forget; the ledger
        group-commits).  Use an ``Append`` ask when the caller must wait for durability."""
        from .audit.messages import Append, AuditRecord

        ledger = self.directory.get("audit")
        if ledger is not None:
            self.send(ledger, Append((AuditRecord(agent_name, action, resource, allowed, reason),)))

    def ask_service(self, service: str, rid: str, request: Any) -> bool:
        """Send ``request`` to a sibling service; its reply arrives at ``on_answer(rid, ...)``."""
        addr = self.directory.get(service)
        if addr is None:
            return False
        self.send(addr, Ask(rid, request))
        return True

    def publish(self, event_type: str, **fields: Any) -> None:
        """Send one event to the EventBus (fire and forget; the bus batches)."""
        from .events.messages import Publish  # local import: events imports service

        bus = self.directory.get("events")
        if bus is not None:
            self.send(bus, Publish(({"type": event_type, **fields},)))
