"""Key layout and reads of the approvals domain (actor and edge).

Environment ``approvals``: db ``requests`` maps the request id to
``{id, subject, action, resource, reason, created_at, expires_at, status,
resolved_at, resolved_by}``; db ``waiters`` maps the id of a pending request to the
pickled reply address of the actor waiting for it (read only by the actor).
"""

from __future__ import annotations

from typing import Any

from ..store import ReadOnlyStore

DOMAIN = "approvals"
REQUESTS_DB = "requests"
WAITERS_DB = "waiters"
STATUSES = ("pending", "approved", "rejected", "expired")


def public(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in ("id", "subject", "action", "resource", "reason", "created_at",
                                       "status", "expires_at", "resolved_at")}


def list_all(store: ReadOnlyStore) -> list[dict[str, Any]]:
    """Pending first, then the history; newest first within each."""
    items = [public(r) for _, r in store.items(DOMAIN, REQUESTS_DB)]
    items.sort(key=lambda r: r["created_at"] or "", reverse=True)
    items.sort(key=lambda r: r["status"] != "pending")
    return items
