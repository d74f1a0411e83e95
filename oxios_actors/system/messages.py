"""Messages of the system services (config, tokens, resources)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class GetConfig:
    pass


@dataclass(frozen=True)
class UpdateConfig:
    """A partial config laid over the current one, validated as a whole."""

    patch: dict[str, Any]


@dataclass(frozen=True)
class ConfigUpdated:
    public: dict[str, Any]
    full: dict[str, Any]
    needs_restart: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RegisterToken:
    token: str
    label: str = ""


@dataclass(frozen=True)
class TokenRegistered:
    token_id: str


@dataclass(frozen=True)
class TakeSample:
    """Ask the ResourceMonitor for a fresh snapshot (not added to history)."""


@dataclass(frozen=True)
class Sample:
    snapshot: dict[str, Any]
