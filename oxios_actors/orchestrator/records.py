"""Key layout and reads of seeds and sessions (written only by the Orchestrator).

Environment ``seeds``: db ``seeds`` maps a creation-ordered seed id to
``{id, goal, constraints, acceptance_criteria, ontology, created_at, generation,
parent_seed_id, score, passed, notes, session_id}``.
Environment ``sessions``: db ``sessions`` maps the session id to
``{id, user_id, user_messages, agent_responses, active_seed_id, active_persona_id,
created_at, updated_at, metadata}``.
Markdown seeds are files ``<workspace>/seeds/<id>.md`` served as ``{id, content}``.
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

from ..store import ReadOnlyStore

SEEDS = "seeds"
SESSIONS = "sessions"
SEED_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_seed_id() -> str:
    return f"seed-{int(time.time() * 1000):011x}-{uuid.uuid4().hex[:8]}"


def seed_summary(seed: dict[str, Any]) -> dict[str, Any]:
    return {"id": seed["id"], "goal": seed["goal"], "constraints_count": len(seed.get("constraints") or []),
            "created_at": seed["created_at"]}


def seed_public(seed: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "goal", "constraints", "acceptance_criteria", "ontology", "created_at", "generation",
            "parent_seed_id", "score", "passed")
    return {k: seed.get(k) for k in keys}


def markdown_seeds(workspace: Path) -> list[Path]:
    folder = workspace / "seeds"
    return sorted(folder.glob("*.md")) if folder.is_dir() else []


def list_seeds(store: ReadOnlyStore, workspace: Path) -> list[dict[str, Any]]:
    items = [seed_summary(s) for _, s in store.items(SEEDS, SEEDS)]
    known = {i["id"] for i in items}
    for path in markdown_seeds(workspace):
        if path.stem not in known:
            first = path.read_text(errors="replace").strip().splitlines()
            goal = first[0].lstrip("# ").strip() if first else path.stem
            mtime = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(path.stat().st_mtime))
            items.append({"id": path.stem, "goal": goal, "constraints_count": 0, "created_at": mtime})
    return items


def get_seed(store: ReadOnlyStore, seed_id: str) -> dict[str, Any] | None:
    return store.get(SEEDS, SEEDS, seed_id.encode())


def markdown_seed(workspace: Path, seed_id: str) -> dict[str, Any] | None:
    if not SEED_ID.match(seed_id):
        return None
    path = workspace / "seeds" / f"{seed_id}.md"
    if not path.is_file() or path.resolve().parent != (workspace / "seeds").resolve():
        return None
    return {"id": seed_id, "content": path.read_text(errors="replace")}


def lineage(store: ReadOnlyStore, seed_id: str) -> list[dict[str, Any]] | None:
    seed = get_seed(store, seed_id)
    if seed is None:
        return None
    chain = []
    seen = set()
    while seed is not None and seed["id"] not in seen:
        seen.add(seed["id"])
        chain.append({"id": seed["id"], "generation": seed.get("generation", 0), "goal": seed["goal"],
                      "parent_id": seed.get("parent_seed_id"), "score": seed.get("score"),
                      "passed": seed.get("passed")})
        parent = seed.get("parent_seed_id")
        seed = get_seed(store, parent) if parent else None
    return list(reversed(chain))


def session_summary(s: dict[str, Any]) -> dict[str, Any]:
    return {"id": s["id"], "user_id": s["user_id"], "message_count": len(s.get("user_messages") or []),
            "active_seed_id": s.get("active_seed_id"), "created_at": s["created_at"],
            "updated_at": s["updated_at"]}


def list_sessions(store: ReadOnlyStore) -> list[dict[str, Any]]:
    sessions = [s for _, s in store.items(SESSIONS, SESSIONS)]
    sessions.sort(key=lambda s: (s["updated_at"], s.get("updated_ts", 0.0)), reverse=True)
    return [session_summary(s) for s in sessions]


def get_session(store: ReadOnlyStore, session_id: str) -> dict[str, Any] | None:
    s = store.get(SESSIONS, SESSIONS, session_id.encode())
    if s is None:
        return None
    keys = ("id", "user_id", "user_messages", "agent_responses", "active_seed_id", "active_persona_id",
            "created_at", "updated_at", "metadata")
    return {k: s.get(k) for k in keys}
