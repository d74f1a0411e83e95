"""Group commit for an actor that owns one LMDB environment.

A durable (sync) LMDB commit costs a disk flush, milliseconds on real disks.
Instead of one commit per message, the changes made while handling messages go
into one open write transaction; the first change sends the actor a ``Flush``
marker, which Thespian queues behind the messages already received, so
everything that arrived together is committed once.  Replies and tells that
reveal those changes wait in an outbox and go out, in order, only after the
commit (DESIGN rule 1: nobody hears of a change before it is durable).  Reads go
through the open transaction, so the actor always sees its own changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import lmdb

from ..messages import Failure
from ..service import DEFERRED, ReplyTo, ServiceActor

log = logging.getLogger("oxios.commit")


@dataclass(frozen=True)
class Flush:
    """Self-sent marker: commit the pending batch."""


class GroupCommit(ServiceActor):
    env: lmdb.Environment

    def init_batch(self) -> None:
        self._txn: lmdb.Transaction | None = None
        self._outbox: list[tuple[ReplyTo | None, Any, Any]] = []
        self.commits = 0

    def batch(self) -> lmdb.Transaction:
        """The open write transaction (begun, and its flush scheduled, on first use)."""
        if self._txn is None:
            self._txn = self.env.begin(write=True)
            self.send(self.myAddress, Flush())
        return self._txn

    @contextmanager
    def reading(self) -> Iterator[lmdb.Transaction]:
        if self._txn is not None:
            yield self._txn
        else:
            with self.env.begin() as txn:
                yield txn

    def respond(self, value: Any) -> Any:
        """A handler's reply: now, or after the pending batch commits."""
        if self._txn is None:
            return value
        self._outbox.append((self.reply_to, value, None))
        return DEFERRED

    def tell_after_commit(self, address: Any, message: Any) -> None:
        if self._txn is None:
            self.send(address, message)
        else:
            self._outbox.append((None, message, address))

    def on_Flush(self, msg: Flush) -> None:
        self.flush()

    def flush(self) -> None:
        txn, self._txn = self._txn, None
        if txn is None:
            return
        outbox, self._outbox = self._outbox, []
        try:
            txn.commit()
        except lmdb.Error as exc:
            log.error("%s: commit failed (%s); reloading state from disk", self.name, exc)
            txn.abort()
            for reply_to, _, address in outbox:
                if address is None:
                    self.reply(reply_to, Failure(500, f"{self.name} could not commit: {exc}"))
            self.reload()
            return
        self.commits += 1
        for reply_to, value, address in outbox:
            if address is None:
                self.reply(reply_to, value)
            else:
                self.send(address, value)

    def reload(self) -> None:
        """Rebuild the in-memory state from LMDB (after a failed commit)."""
        raise NotImplementedError
