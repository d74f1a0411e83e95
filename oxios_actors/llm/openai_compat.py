"""An OpenAI-compatible chat-completions client (OpenAI, Ollama, vLLM, llama.cpp
server, LM Studio) on the official ``openai`` library: it handles tool calls,
timeouts and retries with backoff on 429/5xx, and takes any base URL."""

from __future__ import annotations

import json
from typing import Any

from .base import ChatRequest, Completion, ProviderError, ToolCall


class OpenAICompatProvider:
    name = "openai"

    def __init__(self, *, base_url: str, model: str, api_key: str, timeout: float, max_retries: int) -> None:
        import openai

        self.model = model
        self.base_url = base_url
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                    timeout=timeout, max_retries=max_retries)

    def complete(self, request: ChatRequest) -> Completion:
        import openai

        kwargs: dict[str, Any] = {"model": request.model or self.model, "messages": request.messages,
                                  "temperature": request.temperature, "max_tokens": request.max_tokens}
        if request.tools:
            kwargs["tools"] = request.tools
        try:
            resp = self.client.chat.completions.create(**kwargs)
        except openai.APIStatusError as exc:
            raise ProviderError(f"model endpoint {self.base_url} answered {exc.status_code}: {exc.message}") from exc
        except openai.APIError as exc:
            raise ProviderError(f"model endpoint {self.base_url} failed: {exc}") from exc
        if not resp.choices:
            raise ProviderError("model returned no choices")
        message = resp.choices[0].message
        calls = []
        for tc in message.tool_calls or []:
            try:
                args = json.loads(tc.function.arguments or "{}")
            except json.JSONDecodeError:
                args = {"_raw": tc.function.arguments}
            calls.append(ToolCall(tc.id, tc.function.name, args if isinstance(args, dict) else {"_raw": args}))
        usage = resp.usage
        return Completion(message.content or "", tuple(calls),
                          usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                          resp.model or kwargs["model"])
