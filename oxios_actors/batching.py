"""Group commit for actors that append to an LMDB log (EventBus, AuditLedger).

Items arriving while a short timer runs go into one transaction; asks are
answered only after the transaction that holds their items has committed, so
an acknowledged append is durable, yet a burst costs one fsync, not one each.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .service import ReplyTo, ServiceActor

T = TypeVar("T")

FLUSH_PAYLOAD = "group-commit"


class GroupCommit(Generic[T]):
    def __init__(self, actor: ServiceActor, commit: Callable[[list[T]], int],
                 reply: Callable[[int, int], Any], *, delay: float = 0.002, max_items: int = 2048,
                 after: Callable[[], None] | None = None) -> None:
        """``commit(items)`` writes one transaction and returns the seq of its first item;
        ``reply(first, last)`` builds the answer for an ask whose items got those seqs."""
        self.actor = actor
        self.commit = commit
        self.make_reply = reply
        self.after = after
        self.delay = delay
        self.max_items = max_items
        self.buffer: list[T] = []
        self.waiting: list[tuple[ReplyTo, int, int]] = []
        self.armed = False
        self.batches = 0
        self.items = 0
        self.last_flush = 0.0

    def add(self, items: list[T], reply_to: ReplyTo | None) -> None:
        offset = len(self.buffer)
        self.buffer.extend(items)
        if reply_to is not None and reply_to.rid is not None:
            self.waiting.append((reply_to, offset, len(items)))
        now = time.monotonic()
        if len(self.buffer) >= self.max_items or self.delay <= 0 or (
                not self.armed and now - self.last_flush >= self.delay):
            # Full, or the first item after a quiet spell: commit now (a lone append does not
            # wait); items arriving while a commit was recent are grouped by the timer.
            self.flush()
        elif not self.armed:
            self.armed = True
            self.actor.after(self.delay, FLUSH_PAYLOAD)

    def on_wakeup(self, payload: Any) -> bool:
        """Call from the actor's on_wakeup; True if the payload was ours."""
        if payload != FLUSH_PAYLOAD:
            return False
        self.armed = False
        self.flush()
        return True

    def flush(self) -> int:
        if not self.buffer:
            return 0
        self.last_flush = time.monotonic()
        items, self.buffer = self.buffer, []
        waiting, self.waiting = self.waiting, []
        first = self.commit(items)  # durable when this returns
        self.batches += 1
        self.items += len(items)
        for reply_to, offset, n in waiting:
            self.actor.reply(reply_to, self.make_reply(first + offset, first + offset + n - 1))
        if self.after is not None:
            self.after()
        return len(items)


def poll_interval(waited: float) -> float:
    """How long to wait before looking again at work that has been running ``waited``
    seconds: quick answers are seen within 20 ms, and a long tool call or model call
    costs a few wake-ups a second instead of fifty (hundreds of idle agents add up)."""
    if waited < 0.2:
        return 0.02
    if waited < 2.0:
        return 0.1
    return 0.25
