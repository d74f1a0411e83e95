"""The provider interface.  Providers are plain blocking objects; actors call them
on a worker thread and poll, so a slow model never blocks an actor's mailbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class ProviderError(RuntimeError):
    """The model could not be reached or answered with an error (after retries)."""


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Completion:
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    temperature: float = 0.7
    max_tokens: int = 8192
    purpose: str = "agent"  # agent | interview | seed | evaluate | evolve | chat


class Provider(Protocol):
    name: str
    model: str

    def complete(self, request: ChatRequest) -> Completion: ...


def make_provider(engine: dict[str, Any]) -> Provider:
    """The provider the ``engine`` config section describes (offline when none is set)."""
    import os

    from .offline import OfflineProvider
    from .openai_compat import OpenAICompatProvider

    base_url = engine.get("base_url") or os.environ.get("OXIOS_LLM_BASE_URL", "")
    if engine.get("provider") == "openai" or base_url:
        return OpenAICompatProvider(
            base_url=base_url or "https://api.openai.com/v1",
            model=engine.get("default_model") or os.environ.get("OXIOS_LLM_MODEL", "") or "gpt-4o-mini",
            api_key=engine.get("api_key") or os.environ.get("OXIOS_LLM_API_KEY", "")
            or os.environ.get("OPENAI_API_KEY", ""),
            timeout=float(engine.get("timeout_secs", 120)),
            max_retries=int(engine.get("max_retries", 3)),
        )
    return OfflineProvider()


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    """A conservative token estimate (≈ 4 characters a token) used to reserve budget."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return max(1, chars // 4)
