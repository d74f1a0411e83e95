"""Key layout and reads of the event log, shared by the EventBus and the edge.

Environment ``events``: db ``log`` maps ``seq_key(seq)`` to the msgpack record
``{"seq", "type", "timestamp", ...fields}``.  Seqs start at 1 and only grow;
retention trims the oldest records, never renumbers.
"""

from __future__ import annotations

from typing import Any

from ..store import ReadOnlyStore, key_seq, seq_key

DOMAIN = "events"
LOG_DB = "log"

#: The event types of the contract (§21); nothing else is ever published.
EVENT_TYPES = frozenset({
    "agent_created", "agent_started", "agent_stopped", "agent_failed", "message_received",
    "seed_created", "evaluation_complete", "phase_started", "phase_completed", "agent_output",
    "approval_requested", "approval_resolved", "memory_stored", "memory_recalled",
    "agent_group_created", "agent_group_member_completed", "space_created", "space_activated",
    "space_archived", "spaces_merged", "knowledge_cross_referenced",
})

#: Fields that could carry user content or model output; removed at the source.
SENSITIVE_FIELDS = frozenset({
    "content", "message", "text", "reply", "output", "response", "prompt", "system_prompt",
    "body", "seed_body", "llm_output", "messages", "transcript", "token", "api_key",
})


def sanitize(event: dict[str, Any]) -> dict[str, Any]:
    """Validate an event's type and strip sensitive fields; raises ValueError."""
    etype = event.get("type")
    if etype not in EVENT_TYPES:
        raise ValueError(f"unknown event type: {etype!r}")
    return {k: v for k, v in event.items() if k not in SENSITIVE_FIELDS}


def last_seq(store: ReadOnlyStore) -> int:
    found = store.db(DOMAIN, LOG_DB)
    if found is None:
        return 0
    env, db = found
    with env.begin(db=db) as txn:
        cursor = txn.cursor()
        return key_seq(cursor.key()) if cursor.last() else 0


def read_after(store: ReadOnlyStore, after: int, upto: int | None = None,
               limit: int = 10_000) -> list[tuple[int, bytes]]:
    """Raw (seq, msgpack) records with ``after < seq <= upto``, oldest first."""
    found = store.db(DOMAIN, LOG_DB)
    if found is None:
        return []
    env, db = found
    out: list[tuple[int, bytes]] = []
    with env.begin(db=db) as txn:
        cursor = txn.cursor()
        if not cursor.set_range(seq_key(after + 1)):
            return out
        for key, raw in cursor.iternext():
            seq = key_seq(key)
            if upto is not None and seq > upto:
                break
            out.append((seq, bytes(raw)))
            if len(out) >= limit:
                break
    return out
