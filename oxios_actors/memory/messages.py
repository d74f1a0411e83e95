"""Messages of the memory domain (§8)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Remember:
    """Store one entry.  The edge sends only fact/episode/knowledge; other services may also
    store ``conversation`` and ``session`` memories."""

    content: str
    memory_type: str = "fact"
    tags: tuple[str, ...] = ()
    importance: float = 0.5
    #: who asked: ``api`` for POST /api/memory, else the agent or service name (audited as such)
    source: str = "api"


@dataclass(frozen=True)
class Remembered:
    id: str
    #: the workspace file (relative to the workspace) the entry was written to
    file: str


@dataclass(frozen=True)
class SearchKeywords:
    query: str
    memory_type: str | None = None
    limit: int = 10


@dataclass(frozen=True)
class SearchSemantic:
    query: str
    memory_type: str | None = None
    limit: int = 10


@dataclass(frozen=True)
class Recalled:
    """Entries as the API shows them (``similarity``/``distance`` for semantic search), best
    first; ``engine`` is ``"hnsw"`` for semantic search, ``None`` for keyword search."""

    entries: tuple[dict[str, Any], ...]
    engine: str | None = None


@dataclass(frozen=True)
class SaveIndexes:
    """Write every changed HNSW index file now (normally done a few seconds after a write)."""


@dataclass(frozen=True)
class IndexesSaved:
    types: tuple[str, ...]


@dataclass(frozen=True)
class BackgroundStep:
    """The Memory actor's note to itself: do the next batch of an index rebuild or of
    re-embedding (one batch per message, so requests are served in between)."""
