"""Key layout, validation and reads of the memory domain, shared by the Memory actor and the edge.

Environment ``memory``:

* db ``entries``: entry id (UTF-8) -> ``{id, key, type, content, tags, importance, created_at,
  source, file}``; ``key`` is the entry's HNSW key, ``file`` the workspace file it was written to;
* db ``vectors``: ``seq_key(key)`` -> ``{id, type, model, vec}`` (``vec``: float32 bytes,
  L2-normalised) -- the source of truth every HNSW index is rebuilt from;
* db ``meta``: ``next_key``, ``model`` (the embedding model every vector should have),
  ``reembed`` (a re-embedding pass is due), ``index:<type>`` (what the saved index file of that
  type holds: sha256, size, upto, model, dtype).
"""

from __future__ import annotations

import math
import string
from typing import Any

from ..store import ReadOnlyStore

DOMAIN = "memory"
ENTRIES_DB = "entries"
VECTORS_DB = "vectors"
META_DB = "meta"

#: Every memory type (search filters); POST /api/memory writes only ``WRITABLE_TYPES``.
MEMORY_TYPES = ("conversation", "session", "fact", "episode", "knowledge")
WRITABLE_TYPES = ("fact", "episode", "knowledge")
MAX_CONTENT_BYTES = 32 * 1024
MAX_QUERY_BYTES = 32 * 1024
MAX_TAGS = 64
MAX_TAG_CHARS = 100
DEFAULT_IMPORTANCE = 0.5
DEFAULT_LIMIT = 10
MAX_LIMIT = 500

#: The fields of an entry in every answer (``source``, ``key`` and ``file`` stay inside).
PUBLIC_FIELDS = ("id", "type", "content", "tags", "importance", "created_at")

STOP_WORDS = frozenset("""
a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing done down during each else ever every few for
from further had has have having he her here hers herself him himself his how i if in into is it its
itself just me might more most much must my myself no nor not now of off on once only or other ought
our ours ourselves out over own same shall she should so some such than that the their theirs them
themselves then there these they this those through thus to too under until up upon us very was we
were what when where which while who whom whose why will with within without would yet you your
yours yourself yourselves
""".split())


class MemoryInputError(ValueError):
    """An invalid request; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def stats(store: ReadOnlyStore, enabled: bool) -> dict[str, Any]:
    return {"enabled": enabled,
            "index_size": store.count(DOMAIN, VECTORS_DB),
            "total_entries": store.count(DOMAIN, ENTRIES_DB)}


def public(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in PUBLIC_FIELDS}


def get_entry(store: ReadOnlyStore, entry_id: str) -> dict[str, Any] | None:
    entry = store.get(DOMAIN, ENTRIES_DB, entry_id.encode())
    return None if entry is None else dict(entry)


def vector_models(store: ReadOnlyStore) -> dict[str, int]:
    """How many stored vectors each embedding model produced."""
    out: dict[str, int] = {}
    for _, record in store.items(DOMAIN, VECTORS_DB):
        out[record["model"]] = out.get(record["model"], 0) + 1
    return out


def index_meta(store: ReadOnlyStore, memory_type: str) -> dict[str, Any] | None:
    return store.get(DOMAIN, META_DB, f"index:{memory_type}".encode())


# -- validation (the edge answers early; the actor checks again) ---------------------------------

def _size_check(value: str, name: str, limit: int) -> None:
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise MemoryInputError(413, f"{name} is {size} bytes; the maximum is {limit} bytes (32 KB)")


def check_content(content: Any) -> str:
    if content is None:
        raise MemoryInputError(400, "content is required")
    if not isinstance(content, str):
        raise MemoryInputError(400, "content must be a string")
    _size_check(content, "content", MAX_CONTENT_BYTES)
    if not content.strip():
        raise MemoryInputError(400, "content must not be empty")
    return content


def check_writable_type(value: Any) -> str:
    if value is None:
        return "fact"
    if value not in WRITABLE_TYPES:
        raise MemoryInputError(400, "memory_type must be fact, episode, or knowledge")
    return str(value)


def check_filter_type(value: Any) -> str | None:
    if value is None:
        return None
    if value not in MEMORY_TYPES:
        raise MemoryInputError(400, "memory_type must be one of " + ", ".join(MEMORY_TYPES))
    return str(value)


def check_tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise MemoryInputError(400, "tags must be a list of strings")
    tags: list[str] = []
    for raw in value:
        tag = raw.strip()
        if len(tag) > MAX_TAG_CHARS:
            raise MemoryInputError(400, f"a tag may have at most {MAX_TAG_CHARS} characters")
        if tag and tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise MemoryInputError(400, f"at most {MAX_TAGS} tags")
    return tuple(tags)


def check_importance(value: Any) -> float:
    if value is None:
        return DEFAULT_IMPORTANCE
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not 0.0 <= value <= 1.0):
        raise MemoryInputError(400, "importance must be a number between 0.0 and 1.0")
    return float(value)


def check_query(value: Any) -> str:
    if value is None:
        raise MemoryInputError(400, "query is required")
    if not isinstance(value, str):
        raise MemoryInputError(400, "query must be a string")
    _size_check(value, "query", MAX_QUERY_BYTES)
    if not value.strip():
        raise MemoryInputError(400, "query must not be empty")
    return value


def check_limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
        raise MemoryInputError(400, f"limit must be an integer between 1 and {MAX_LIMIT}")
    return value


def new_entry_fields(body: dict[str, Any]) -> tuple[str, str, tuple[str, ...], float]:
    """(content, memory_type, tags, importance) of a POST /api/memory body."""
    return (check_content(body.get("content")), check_writable_type(body.get("memory_type")),
            check_tags(body.get("tags")), check_importance(body.get("importance")))


def search_fields(body: dict[str, Any]) -> tuple[str, str | None, int]:
    """(query, memory_type filter, limit) of a search body."""
    return (check_query(body.get("query")), check_filter_type(body.get("memory_type")),
            check_limit(body.get("limit")))


# -- keyword search --------------------------------------------------------------------------

def keywords(query: str) -> list[str]:
    """Split on whitespace, strip trailing punctuation, lowercase; keep words longer than two
    letters that are not stop words (in query order, without repeats)."""
    out: list[str] = []
    for raw in query.split():
        word = raw.rstrip(string.punctuation).lower()
        if len(word) > 2 and word not in STOP_WORDS and word not in out:
            out.append(word)
    return out


def keyword_hits(entry: dict[str, Any], words: list[str]) -> int:
    """How many of ``words`` occur in the entry's content or tags."""
    content = entry["content"].lower()
    tags = [t.lower() for t in entry["tags"]]
    return sum(1 for w in words if w in content or any(w in t for t in tags))


def rank_key(entry: dict[str, Any], hits: int) -> tuple[float, int, str]:
    """Importance first (the documented rank), then more matched words, then newer."""
    return (-entry["importance"], -hits, _negate(entry["created_at"]))


def _negate(text: str) -> str:
    return "".join(chr(0x10FFFF - ord(c)) for c in text)
