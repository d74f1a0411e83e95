"""Key layout and reads of the agents domain shared by the AgentSupervisor and the edge.

Environment ``agents``: db ``counters`` holds the lifetime counters
(``forked``, ``completed``, ``failed``, ``active``) as msgpack integers.
"""

from __future__ import annotations

from ..store import ReadOnlyStore

DOMAIN = "agents"
COUNTERS_DB = "counters"
COUNTERS = ("forked", "completed", "failed", "active")


def read_counters(store: ReadOnlyStore) -> dict[str, int]:
    return {name: int(store.get(DOMAIN, COUNTERS_DB, name.encode()) or 0) for name in COUNTERS}
