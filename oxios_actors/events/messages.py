"""Messages of the events domain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Publish:
    """Events to append, each ``{"type": ..., **fields}``.  As a tell it is
    batched with others (group commit); as an ask it is committed at once and
    answered with ``Published``."""

    events: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class Published:
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class Subscribe:
    """Ask the bus to send ``LogAdvanced`` to the sender for ``lease_secs``;
    subscribers renew before the lease runs out."""

    lease_secs: float = 30.0


@dataclass(frozen=True)
class Subscribed:
    last_seq: int


@dataclass(frozen=True)
class LogAdvanced:
    """The log now ends at ``seq``: read what is new from LMDB."""

    seq: int
