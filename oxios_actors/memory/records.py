"""Key layout and reads of the memory domain shared by the Memory actor and the edge.

Environment ``memory``: db ``entries`` (id -> entry), db ``vectors`` (id -> vector).
"""

from __future__ import annotations

from typing import Any

from ..store import ReadOnlyStore

DOMAIN = "memory"
ENTRIES_DB = "entries"
VECTORS_DB = "vectors"


def stats(store: ReadOnlyStore, enabled: bool) -> dict[str, Any]:
    return {"enabled": enabled,
            "index_size": store.count(DOMAIN, VECTORS_DB),
            "total_entries": store.count(DOMAIN, ENTRIES_DB)}
