"""LLM providers: an OpenAI-compatible client and the built-in offline provider."""

from .base import Completion, Provider, ProviderError, ToolCall, make_provider

__all__ = ["Completion", "Provider", "ProviderError", "ToolCall", "make_provider"]
