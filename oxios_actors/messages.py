"""Messages every service understands: the ask envelope, failures, lifecycle.

All messages are frozen dataclasses carrying plain data (and actor addresses),
so they pickle across processes and nodes (DESIGN rule 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Ask:
    """A request from the edge; the reply comes back wrapped in an ``Answer``
    with the same ``rid`` so a late reply can never be taken for another."""

    rid: str
    request: Any


@dataclass(frozen=True)
class Answer:
    rid: str
    reply: Any


@dataclass(frozen=True)
class Failure:
    """A request that failed; ``status`` is the HTTP status the edge answers with."""

    status: int
    error: str


@dataclass(frozen=True)
class Ok:
    """Generic success for commands whose reply carries a small mapping."""

    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Configure:
    """Sent by the Kernel to a freshly created service: where state lives,
    who the other services are, and the current configuration."""

    name: str
    home: str
    directory: dict[str, Any]
    config: dict[str, Any]


@dataclass(frozen=True)
class ServiceReady:
    name: str
    pid: int


@dataclass(frozen=True)
class DirectoryUpdate:
    directory: dict[str, Any]
    generation: int


@dataclass(frozen=True)
class ConfigChanged:
    config: dict[str, Any]


@dataclass(frozen=True)
class Ping:
    pass


@dataclass(frozen=True)
class Pong:
    name: str
    pid: int
    stats: dict[str, Any] = field(default_factory=dict)
