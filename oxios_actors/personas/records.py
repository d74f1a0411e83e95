"""Key layout, defaults, validation and reads of personas (actor, orchestrator, edge).

Environment ``personas``: db ``personas`` maps id -> ``{id, name, role, description,
system_prompt, enabled, model, personality_traits, created_at}``; db ``meta`` holds
``active`` -> the active persona id.
"""

from __future__ import annotations

from typing import Any

from ..store import ReadOnlyStore

DOMAIN = "personas"
PERSONAS_DB = "personas"
META_DB = "meta"

DEFAULTS: tuple[dict[str, Any], ...] = (
    {"id": "persona-dev", "name": "Developer", "role": "Software Engineer",
     "description": "A skilled software developer persona",
     "system_prompt": "You are an expert software developer. Write clear, tested, maintainable code.",
     "enabled": True, "model": None, "personality_traits": ["analytical", "thorough", "pragmatic"]},
    {"id": "persona-review", "name": "Reviewer", "role": "Code Reviewer",
     "description": "A thorough code review specialist",
     "system_prompt": "You are an expert code reviewer. Find bugs, risks and unclear code; be constructive.",
     "enabled": True, "model": None, "personality_traits": ["detail-oriented", "constructive"]},
    {"id": "persona-research", "name": "Researcher", "role": "Researcher",
     "description": "A careful researcher who gathers and summarises information",
     "system_prompt": "You are a careful researcher. Gather facts, cite sources, summarise clearly.",
     "enabled": True, "model": None, "personality_traits": ["curious", "methodical"]},
)

FIELDS: dict[str, str] = {"name": "str", "role": "str", "description": "str", "system_prompt": "str",
                          "enabled": "bool", "model": "str?", "personality_traits": "list[str]"}
REQUIRED = ("name", "role", "description")
LIST_FIELDS = ("id", "name", "role", "description", "enabled", "personality_traits")


def validate(body: Any, *, partial: bool) -> dict[str, Any]:
    """The accepted fields of a create (``partial=False``) or update; raises ValueError."""
    if not isinstance(body, dict):
        raise ValueError("persona must be a JSON object")
    for key, value in body.items():
        kind = FIELDS.get(key)
        if kind is None:
            raise ValueError(f"unknown persona field: {key}")
        ok = {"str": isinstance(value, str), "bool": isinstance(value, bool),
              "str?": value is None or isinstance(value, str),
              "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value)}[kind]
        if not ok:
            raise ValueError(f"{key} must be {'a list of strings' if kind == 'list[str]' else kind.rstrip('?')}")
        if key in REQUIRED and not value.strip():
            raise ValueError(f"{key} must not be empty")
    if not partial:
        missing = [k for k in REQUIRED if k not in body]
        if missing:
            raise ValueError(f"missing required field(s): {', '.join(missing)}")
    return dict(body)


def candidate_ids(persona_id: str) -> tuple[str, ...]:
    """The config may name a persona by its id or by the short name (``dev``)."""
    return (persona_id, f"persona-{persona_id}")


def all_personas(store: ReadOnlyStore) -> list[dict[str, Any]]:
    return [p for _, p in store.items(DOMAIN, PERSONAS_DB)]


def get(store: ReadOnlyStore, persona_id: str) -> dict[str, Any] | None:
    return store.get(DOMAIN, PERSONAS_DB, persona_id.encode())


def active(store: ReadOnlyStore) -> dict[str, Any] | None:
    pid = store.get(DOMAIN, META_DB, b"active")
    return get(store, pid) if pid else None
