"""Key layout and reads of the agents domain shared by the AgentSupervisor and the edge.

Environment ``agents`` (written only by the AgentSupervisor):
- db ``agents``: ``sortable id`` -> record ``{id, name, status, created_at, seed_id, task_id,
  group_id, node, error, output_summary, pid, pid_started, started_at, finished_at}``.
  Ids start with a creation-time prefix, so key order is ``created_at`` order.
- db ``groups``: group id -> ``{id, name, agent_count, status, created_at, parent_seed_id,
  members: [{agent_id, name, status, result, error}]}``.
- db ``counters``: ``forked``, ``completed``, ``failed``, ``killed``, ``active`` -> int.
- db ``nodes``: node name -> ``{name, capabilities, admin, joined_at, last_check_in, agents,
  status}`` for the worker nodes of the convention (rebuilt from convention updates).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from ..store import ReadOnlyStore

DOMAIN = "agents"
AGENTS_DB = "agents"
GROUPS_DB = "groups"
COUNTERS_DB = "counters"
NODES_DB = "nodes"
COUNTERS = ("forked", "completed", "failed", "killed", "active")

LIVE = ("Starting", "Queued", "Running")
FINAL = ("Completed", "Failed", "Killed")
PUBLIC_FIELDS = ("id", "name", "status", "created_at", "seed_id", "task_id", "group_id", "node", "error")


def new_agent_id() -> str:
    """``agent-<ms since epoch, hex>-<random>``: unique and ordered by creation."""
    return f"agent-{int(time.time() * 1000):011x}-{uuid.uuid4().hex[:8]}"


def new_group_id() -> str:
    return f"group-{int(time.time() * 1000):011x}-{uuid.uuid4().hex[:8]}"


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in PUBLIC_FIELDS}


def read_counters(store: ReadOnlyStore) -> dict[str, int]:
    return {name: int(store.get(DOMAIN, COUNTERS_DB, name.encode()) or 0) for name in COUNTERS}


def page(store: ReadOnlyStore, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    items = []
    for i, (_, record) in enumerate(store.items(DOMAIN, AGENTS_DB)):
        if i >= offset + limit:
            break
        if i >= offset:
            items.append(public(record))
    return items, store.count(DOMAIN, AGENTS_DB)


def get_agent(store: ReadOnlyStore, agent_id: str) -> dict[str, Any] | None:
    return store.get(DOMAIN, AGENTS_DB, agent_id.encode())


def list_groups(store: ReadOnlyStore) -> list[dict[str, Any]]:
    return [{k: g.get(k) for k in ("id", "name", "agent_count", "status", "created_at")}
            for _, g in store.items(DOMAIN, GROUPS_DB)]


def list_nodes(store: ReadOnlyStore) -> list[dict[str, Any]]:
    return [n for _, n in store.items(DOMAIN, NODES_DB)]


def get_group(store: ReadOnlyStore, group_id: str) -> dict[str, Any] | None:
    return store.get(DOMAIN, GROUPS_DB, group_id.encode())
