"""The Scheduler's decisions as plain objects: the start queue and the rate window.

Both take their time from an injected clock (seconds, monotonic) so that the
rate limit is tested without sleeping a minute.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from collections.abc import Callable, Iterable

Clock = Callable[[], float]

RATE_WINDOW_SECS = 60.0


class TaskQueue:
    """Tasks waiting to start: highest priority first, FIFO (by submission seq)
    within a priority.  A heap with lazy deletion: ``remove`` is O(1), stale heap
    entries are dropped when they reach the top."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, str]] = []
        self._members: dict[str, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._members

    def push(self, task_id: str, priority: int, seq: int) -> None:
        self._members[task_id] = (priority, seq)
        heapq.heappush(self._heap, (-priority, seq, task_id))

    def remove(self, task_id: str) -> None:
        self._members.pop(task_id, None)

    def _clean(self) -> None:
        heap = self._heap
        while heap:
            neg, seq, task_id = heap[0]
            if self._members.get(task_id) == (-neg, seq):
                return
            heapq.heappop(heap)

    def peek(self) -> str | None:
        self._clean()
        return self._heap[0][2] if self._heap else None

    def pop(self) -> str:
        self._clean()
        _, _, task_id = heapq.heappop(self._heap)
        del self._members[task_id]
        return task_id

    def ordered(self) -> list[str]:
        """Task ids in the order they would start."""
        return [t for _, t in sorted(((-p, s), t) for t, (p, s) in self._members.items())]


class RateWindow:
    """At most ``limit`` task starts in any sliding ``RATE_WINDOW_SECS`` window.

    A sliding window (not a token bucket): ``remaining()`` is exactly how many
    starts the last 60 s leave, and ``free_in()`` when the oldest start leaves
    the window.  Lowering the limit takes effect at once; starts already made
    stay counted.
    """

    def __init__(self, limit: int, clock: Clock = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.starts: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self.starts and self.starts[0] <= now - RATE_WINDOW_SECS:
            self.starts.popleft()

    def remaining(self) -> int:
        self._prune(self.clock())
        return max(0, self.limit - len(self.starts))

    def take(self) -> None:
        self.starts.append(self.clock())

    def free_in(self) -> float:
        """Seconds until one more start is allowed (0 when one is allowed now)."""
        now = self.clock()
        self._prune(now)
        excess = len(self.starts) - self.limit
        if excess < 0:
            return 0.0
        return max(0.0, self.starts[excess] + RATE_WINDOW_SECS - now)

    # -- persistence: starts as wall-clock times, so a restart keeps the window --
    def export(self) -> list[float]:
        now, wall = self.clock(), time.time()
        self._prune(now)
        return [wall - (now - t) for t in self.starts]

    def restore(self, walls: Iterable[float]) -> None:
        now, wall = self.clock(), time.time()
        self.starts = deque(sorted(now - (wall - w) for w in walls))
        self._prune(now)
