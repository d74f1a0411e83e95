"""Messages of the audit domain."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AuditRecord:
    """One thing that happened: who (``agent_name``) did what (``action``) to what
    (``resource``), whether it was allowed, and why."""

    agent_name: str
    action: str
    resource: str = ""
    allowed: bool = True
    reason: str | None = None


@dataclass(frozen=True)
class Append:
    """Records to add to the chain.  As an ask the reply (``Appended``) comes only
    after they are durable; as a tell they are group-committed with others."""

    records: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class Appended:
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class Flush:
    """Commit anything buffered and force a durable checkpoint."""


@dataclass(frozen=True)
class Flushed:
    flushed: int


@dataclass(frozen=True)
class Verify:
    pass


@dataclass(frozen=True)
class Verified:
    valid: bool
    entry_count: int
    broken_at_seq: int | None = None
    expected: str | None = None
    found: str | None = None
