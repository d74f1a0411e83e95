"""§2 Chat, §6 Seeds, §14 Sessions, §15 Personas: the orchestrator end to end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from oxios_actors.events import log as event_log
from oxios_actors.orchestrator import evaluate as ev
from oxios_actors.store import unpack

from .scripted_llm import ScriptedModel


async def chat(client, auth, content: str, **kw: Any) -> dict[str, Any]:
    r = await client.post("/api/chat", json={"content": content, **kw}, headers=auth)
    assert r.status == 200, await r.text()
    return await r.json()


def events_for(edge, session_id: str) -> list[dict[str, Any]]:
    return [e for e in (unpack(raw) for _, raw in event_log.read_after(edge.store, 0, limit=10**6))
            if e.get("session_id") == session_id]


async def test_contract_example_runs_the_whole_pipeline(client, auth, edge, home):
    body = await chat(client, auth, "Build a TODO app with React and SQLite", user_id="alice",
                      session_id="session-42")
    assert body["echo"] == "Build a TODO app with React and SQLite"
    assert body["session_id"] == "session-42" and body["phase"] in ("evaluate", "evolve")
    assert "Task 'Build a TODO app with React and SQLite' completed." in body["reply"]
    session = await (await client.get("/api/sessions/session-42", headers=auth)).json()
    seed_id = session["active_seed_id"]
    assert session["user_id"] == "alice" and session["user_messages"] == ["Build a TODO app with React and SQLite"]
    assert session["agent_responses"][0]["seed_id"] == seed_id
    assert session["active_persona_id"] == "persona-dev"
    seed = await (await client.get(f"/api/seeds/{seed_id}", headers=auth)).json()
    assert seed["goal"] == "Build a TODO app with React and SQLite" and seed["generation"] == 0
    assert isinstance(seed["constraints"], list) and seed["parent_seed_id"] is None
    plan = home / "workspace" / "plans" / f"{seed_id}.md"
    assert plan.exists() and "TODO" in plan.read_text()
    for _ in range(100):  # events are group-committed a few ms after the reply
        kinds = [e["type"] for e in events_for(edge, "session-42")]
        if "evaluation_complete" in kinds and kinds.count("phase_completed") >= 4:
            break
        await asyncio.sleep(0.02)
    for t in ("message_received", "phase_started", "phase_completed", "seed_created", "agent_created",
              "agent_started", "agent_stopped", "evaluation_complete"):
        assert t in kinds, t
    phases = [e["phase"] for e in events_for(edge, "session-42") if e["type"] == "phase_started"]
    assert phases[:4] == ["interview", "seed", "execute", "evaluate"]
    assert all("content" not in e and "reply" not in e for e in events_for(edge, "session-42"))
    listed = await (await client.get("/api/seeds?limit=500", headers=auth)).json()
    assert any(s["id"] == seed_id and s["constraints_count"] == len(seed["constraints"]) for s in listed["items"])
    lineage = await (await client.get(f"/api/seeds/{seed_id}/evolution", headers=auth)).json()
    assert lineage[-1]["id"] == seed_id and lineage[0]["parent_id"] is None


async def test_conversation_and_clarifying_questions_keep_the_session(client, auth):
    body = await chat(client, auth, "hello there")
    assert body["phase"] == "interview" and "No language model is configured" in body["reply"]
    sid = body["session_id"]
    vague = await chat(client, auth, "make it", session_id=sid)
    assert vague["phase"] == "interview" and "1." in vague["reply"]
    follow = await chat(client, auth, "Write a Python script that prints the date, it should exit with code 0",
                        session_id=sid)
    assert follow["phase"] in ("evaluate", "evolve"), follow
    session = await (await client.get(f"/api/sessions/{sid}", headers=auth)).json()
    assert len(session["user_messages"]) == 3 and len(session["agent_responses"]) == 3
    listed = await (await client.get("/api/sessions?limit=5", headers=auth)).json()
    assert listed["items"][0]["id"] == sid and listed["items"][0]["message_count"] == 3
    r = await client.delete(f"/api/sessions/{sid}", headers=auth)
    assert await r.json() == {"status": "deleted", "id": sid}
    assert (await client.get(f"/api/sessions/{sid}", headers=auth)).status == 404
    assert (await client.delete(f"/api/sessions/{sid}", headers=auth)).status == 404


async def test_chat_input_validation(client, auth):
    r = await client.post("/api/chat", json={"content": ""}, headers=auth)
    assert r.status == 400
    r = await client.post("/api/chat", json={"content": "x" * 65_537}, headers=auth)
    assert r.status == 413 and "error" in await r.json()
    r = await client.post("/api/chat", json={"content": 5}, headers=auth)
    assert r.status == 400
    r = await client.post("/api/chat", json={"message": "hello again"}, headers=auth)
    assert r.status == 200  # "message" is an alias of "content"


async def test_many_criteria_run_as_a_group_and_concurrent_chats(client, auth, edge):
    text = ("Write project docs with these parts:\n- README explains install\n- README explains usage\n"
            "- CHANGELOG lists versions\n- LICENSE names MIT\n- CONTRIBUTING explains tests")
    first, second = await asyncio.gather(chat(client, auth, text), chat(client, auth, "Write a haiku about unit tests in English"))
    assert first["phase"] in ("evaluate", "evolve") and second["phase"] in ("evaluate", "evolve")
    kinds = [e["type"] for e in events_for(edge, first["session_id"])]
    groups = await (await client.get("/api/agent-groups", headers=auth)).json()
    seed_id = (await (await client.get(f"/api/sessions/{first['session_id']}", headers=auth)).json())["active_seed_id"]
    assert any(g["name"] == f"seed {seed_id}" and g["agent_count"] == 5 for g in groups)
    assert kinds.count("agent_created") >= 5


async def test_websocket_streams_events_and_a_private_reply(client, auth, token):
    r = await client.get("/api/chat/stream")
    assert r.status == 401
    async with client.ws_connect(f"/api/chat/stream?token={token}") as ws:
        hello = json.loads((await ws.receive(timeout=10)).data)
        assert hello["type"] == "connected"
        await ws.send_str("Write a shopping list with apples and pears")
        seen: list[str] = []
        while True:
            msg = json.loads((await ws.receive(timeout=60)).data)
            seen.append(msg["type"])
            if msg["type"] == "chat_reply":
                break
        assert msg["session_id"] == hello["session_id"] and "completed" in msg["reply"]
        assert "phase_started" in seen and "seed_created" in seen and "agent_created" in seen


async def test_evolution_with_a_model_that_fails_evaluation(client, auth, edge):
    model = ScriptedModel()
    url = await model.start()
    import oxios_actors.llm  # noqa: F401
    r = await client.put("/api/config", json={"engine": {"provider": "openai", "base_url": url,
                                                         "default_model": "scripted", "max_retries": 0},
                                              "orchestrator": {"max_evolutions": 1}}, headers=auth)
    assert r.status == 200
    edge.limiter.per_minute = 10**9
    try:
        interview = json.dumps({"is_task": True, "chat_response": "",
                                "scores": {"goal_clarity": 1, "constraint_clarity": 1, "success_criteria": 1}})
        # The scripted model answers every call with the same JSON: for the interview it is a clear task;
        # as a seed it has no goal (fallback goal); as an evaluation it has no score (0) -> evolve once.
        body = await chat(client, auth, f"Do the thing [script:json {interview}]")
        assert body["phase"] == "evolve" and "Evaluation score: 0%" in body["reply"]
        session = await (await client.get(f"/api/sessions/{body['session_id']}", headers=auth)).json()
        child = session["active_seed_id"]
        lineage = await (await client.get(f"/api/seeds/{child}/evolution", headers=auth)).json()
        assert [s["generation"] for s in lineage] == [0, 1]
        assert lineage[1]["parent_id"] == lineage[0]["id"] and lineage[0]["passed"] is False
    finally:
        await client.put("/api/config", json={"engine": {"provider": "offline", "base_url": "",
                                                         "default_model": "", "max_retries": 3},
                                              "orchestrator": {"max_evolutions": 3}}, headers=auth)
        edge.limiter.per_minute = 10**9
        await model.stop()


def test_mechanical_evaluation_and_parsing():
    assert ev.criterion_passes("exits with exit code 0", "... exit code 0")
    assert not ev.criterion_passes("exits with exit code 0", "exit code 1")
    assert ev.criterion_passes("README explains install steps", "the readme explains how to install")
    assert not ev.criterion_passes("README explains install steps", "nothing here")
    assert ev.ambiguity({"goal_clarity": 1, "constraint_clarity": 1, "success_criteria": 1}) == 0
    assert ev.ambiguity({"goal_clarity": 0.5, "constraint_clarity": 0.5, "success_criteria": 0.5}) == 0.5
    assert ev.interview_answer("not json")["questions"] == ["Could you describe the goal in more detail?"]
    assert ev.seed_answer("```json\n{\"goal\": \"G\"}\n```")["goal"] == "G"
    assert ev.seed_answer("nope")["acceptance_criteria"] == ["Task completes without errors"]


# -- personas ------------------------------------------------------------------------------
async def test_personas_crud_and_active(client, auth):
    listed = await (await client.get("/api/personas", headers=auth)).json()
    assert {p["id"] for p in listed} >= {"persona-dev", "persona-review", "persona-research"}
    active = await (await client.get("/api/personas/active", headers=auth)).json()
    assert active["id"] == "persona-dev" and active["enabled"] is True
    r = await client.post("/api/personas", json={"name": "Reviewer", "role": "Code Reviewer",
                                                  "description": "A thorough code review specialist",
                                                  "system_prompt": "You are an expert code reviewer."}, headers=auth)
    created = await r.json()
    assert created["status"] == "created" and created["name"] == "Reviewer"
    pid = created["id"]
    got = await (await client.get(f"/api/personas/{pid}", headers=auth)).json()
    assert got["enabled"] is True and got["personality_traits"] == [] and got["model"] is None
    r = await client.put(f"/api/personas/{pid}", json={"name": "Senior Reviewer"}, headers=auth)
    assert await r.json() == {"status": "updated", "id": pid}
    assert (await (await client.get(f"/api/personas/{pid}", headers=auth)).json())["role"] == "Code Reviewer"
    for bad in ({"name": 3}, {"enabled": "yes"}, {"nope": 1}):
        assert (await client.put(f"/api/personas/{pid}", json=bad, headers=auth)).status == 400
    assert (await client.post("/api/personas", json={"name": "x"}, headers=auth)).status == 400
    r = await client.put("/api/personas/active", json={"id": pid}, headers=auth)
    assert await r.json() == {"status": "active", "id": pid, "name": "Senior Reviewer"}
    await client.put(f"/api/personas/{pid}", json={"enabled": False}, headers=auth)
    assert (await client.put("/api/personas/active", json={"id": pid}, headers=auth)).status == 400
    assert (await client.put("/api/personas/active", json={"id": "persona-nope"}, headers=auth)).status == 404
    r = await client.put("/api/personas/active", json={"id": pid}, headers=auth)
    await client.put(f"/api/personas/{pid}", json={"enabled": True}, headers=auth)
    await client.put("/api/personas/active", json={"id": pid}, headers=auth)
    r = await client.delete(f"/api/personas/{pid}", headers=auth)
    assert await r.json() == {"status": "deleted", "id": pid}
    after = await (await client.get("/api/personas/active", headers=auth)).json()
    assert after.get("id") and after["id"] != pid  # another enabled persona took over
    assert (await client.delete(f"/api/personas/{pid}", headers=auth)).status == 404
    assert (await client.get(f"/api/personas/{pid}", headers=auth)).status == 404
    await client.put("/api/personas/active", json={"id": "persona-dev"}, headers=auth)


async def test_last_persona_cannot_be_deleted(tmp_path):
    from thespian.actors import ActorSystem

    from oxios_actors.messages import Ask, Configure
    from oxios_actors.personas.service import DeletePersona

    asys = ActorSystem("simpleSystemBase", transientUnique=True)
    try:
        addr = asys.createActor("oxios_actors.personas.service.Personas")
        asys.ask(addr, Configure("personas", str(tmp_path), {}, {}), 5)
        replies = [asys.ask(addr, Ask(str(i), DeletePersona(p)), 5).reply
                   for i, p in enumerate(("persona-dev", "persona-review", "persona-research"))]
        assert replies[0].data["status"] == "deleted" and replies[1].data["status"] == "deleted"
        assert replies[2].status == 400 and replies[2].error == "Cannot delete the last persona"
    finally:
        asys.shutdown()


@pytest.mark.parametrize("path", ["/api/seeds/nope", "/api/seeds/nope/evolution", "/api/sessions/nope"])
async def test_unknown_ids_are_404(client, auth, path):
    assert (await client.get(path, headers=auth)).status == 404


async def test_markdown_seed_is_served(client, auth, home):
    folder = home / "workspace" / "seeds"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my-seed.md").write_text("# My Seed\nBuild something great...")
    body = await (await client.get("/api/seeds/my-seed", headers=auth)).json()
    assert body == {"id": "my-seed", "content": "# My Seed\nBuild something great..."}
    listed = await (await client.get("/api/seeds?limit=500", headers=auth)).json()
    assert any(s["id"] == "my-seed" and s["goal"] == "My Seed" for s in listed["items"])


async def test_seeds_are_versioned_and_episodes_remembered(client, auth, home):
    import pygit2

    body = await chat(client, auth, "Write a release checklist for the mobile app in markdown")
    session = await (await client.get(f"/api/sessions/{body['session_id']}", headers=auth)).json()
    seed_id = session["active_seed_id"]
    repo = pygit2.Repository(str(home / "workspace"))
    for _ in range(100):
        messages = [c.message for c in repo.walk(repo.head.target)]
        if any(f"evaluation {seed_id}" in m for m in messages):
            break
        await asyncio.sleep(0.05)
    assert any(f"seed {seed_id}" in m for m in messages) and any(f"evaluation {seed_id}" in m for m in messages)
    saved = json.loads((home / "workspace" / "seeds" / f"{seed_id}.json").read_text())
    assert saved["id"] == seed_id and saved["score"] is not None
    for _ in range(100):
        found = await (await client.post("/api/memory/search", json={"query": "release checklist mobile"},
                                         headers=auth)).json()
        if found["count"]:
            break
        await asyncio.sleep(0.05)
    assert any(e["type"] == "episode" and "release checklist" in e["content"].lower() for e in found["entries"])
