"""§8 Memory: validation, files, keyword and semantic (HNSW) search, events, audit, the index
protections (checksum, catch-up after a crash) and re-embedding after a model change."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from http_edge.errors import ApiError
from oxios_actors.audit import chain
from oxios_actors.events import log as event_log
from oxios_actors.memory import files, records
from oxios_actors.memory.bank import MemoryBank
from oxios_actors.memory.embedding import HashEmbedder, MiniLMEmbedder
from oxios_actors.memory.messages import IndexesSaved, SaveIndexes
from oxios_actors.messages import Ping, Pong
from oxios_actors.store import seq_key, state_dir, unpack

NOW = "2026-05-17T10:30:00+00:00"


def uniq() -> str:
    return "zq" + uuid.uuid4().hex[:10]


# -- pure functions ------------------------------------------------------------------------------

def test_keywords_follow_the_documented_rules():
    assert records.keywords("How does the Event system work?") == ["event", "system", "work"]
    assert records.keywords("Rust!!! patterns, rust... go") == ["rust", "patterns"]
    assert records.keywords("a an the of is it") == []


@pytest.mark.parametrize("body, status, message", [
    ({}, 400, "content is required"),
    ({"content": 5}, 400, "content must be a string"),
    ({"content": "  "}, 400, "content must not be empty"),
    ({"content": "x" * (32 * 1024 + 1)}, 413, "32 KB"),
    ({"content": "é" * (16 * 1024 + 1)}, 413, "bytes"),  # bytes, not characters
    ({"content": "x", "memory_type": "session"}, 400, "memory_type must be fact, episode, or knowledge"),
    ({"content": "x", "memory_type": 3}, 400, "memory_type must be fact, episode, or knowledge"),
    ({"content": "x", "importance": 1.5}, 400, "importance"),
    ({"content": "x", "importance": -0.1}, 400, "importance"),
    ({"content": "x", "importance": True}, 400, "importance"),
    ({"content": "x", "importance": "high"}, 400, "importance"),
    ({"content": "x", "tags": "a"}, 400, "tags must be a list of strings"),
    ({"content": "x", "tags": ["a", 1]}, 400, "tags must be a list of strings"),
])
def test_new_entry_validation(body, status, message):
    with pytest.raises(records.MemoryInputError) as info:
        records.new_entry_fields(body)
    assert info.value.status == status and message in info.value.message


def test_new_entry_defaults_and_limits():
    assert records.new_entry_fields({"content": "x" * 32 * 1024}) == ("x" * 32 * 1024, "fact", (), 0.5)
    assert records.new_entry_fields({"content": "c", "memory_type": "knowledge", "tags": [" a ", "a", "b"],
                                     "importance": 1}) == ("c", "knowledge", ("a", "b"), 1.0)
    assert records.search_fields({"query": "q"}) == ("q", None, 10)
    assert records.search_fields({"query": "q", "memory_type": "session", "limit": 500}) == ("q", "session", 500)
    for bad in ({"query": "q", "limit": 0}, {"query": "q", "limit": 501}, {"query": "q", "limit": True},
                {"query": "q", "limit": "5"}, {"query": "q", "memory_type": "bogus"}, {"query": 3}, {}):
        with pytest.raises(records.MemoryInputError) as info:
            records.search_fields(bad)
        assert info.value.status == 400


def test_file_names_are_slugs_and_traversal_is_refused(tmp_path: Path):
    assert files.knowledge_name("# Rust Patterns\n\n## Builder", (), "abc") == "rust-patterns"
    assert files.knowledge_name("!!!", ("Deploy Notes",), "abc") == "deploy-notes"
    assert files.knowledge_name("???", (), "abcdef123456") == "knowledge-abcdef12"
    assert files.slug("Ünïcode façade " + "word " * 40).startswith("unicode-facade-word")
    assert len(files.slug("word " * 40)) <= files.MAX_SLUG
    for bad in ("..", "../config", "a/b", ".hidden", "a..b", "", "x" * 300, "a\\b", "%2e%2e"):
        with pytest.raises(files.BadName):
            files.read_file(tmp_path, bad)
    assert files.read_file(tmp_path, "missing") is None
    (tmp_path / "memory" / "knowledge").mkdir(parents=True)
    (tmp_path / "memory" / "2026-05-16.md").write_text("d1")
    (tmp_path / "memory" / "2026-05-17.md").write_text("d2")
    (tmp_path / "memory" / "knowledge" / "b.md").write_text("kb")
    (tmp_path / "memory" / "knowledge" / "a.md").write_text("ka")
    (tmp_path / "memory" / ".secret.md").write_text("no")
    assert files.list_files(tmp_path) == [
        {"name": "2026-05-17", "category": "daily"}, {"name": "2026-05-16", "category": "daily"},
        {"name": "a", "category": "knowledge"}, {"name": "b", "category": "knowledge"}]
    assert files.read_file(tmp_path, "a.md") == {"name": "a", "category": "knowledge", "content": "ka"}


def test_hash_embedder_is_deterministic_and_normalised():
    e = HashEmbedder()
    a, b, c = e.embed(["the broadcast event bus", "the event bus broadcasts", "pasta for dinner"])
    assert np.allclose(np.linalg.norm([a, b, c], axis=1), 1.0, atol=1e-5)
    assert float(a @ b) > float(a @ c)
    # blake2b, not Python's salted hash(): the same vector in every process
    digest = hashlib.sha256(e.embed(["stable"]).tobytes()).hexdigest()
    assert digest == hashlib.sha256(HashEmbedder().embed(["stable"]).tobytes()).hexdigest()


def test_minilm_runs_offline_and_understands_meaning():
    e = MiniLMEmbedder()
    docs = ["Oxios uses an event-driven architecture with a broadcast bus.", "The cat sat on the mat.",
            "I had pasta for dinner yesterday."]
    vecs = e.embed(docs)
    query = e.embed(["How does the event system work?"])[0]
    assert vecs.shape == (3, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert int(np.argmax(vecs @ query)) == 0
    # padding in a batch does not change a vector
    assert np.allclose(e.embed(["hello world"])[0], e.embed(["hello world", "x " * 50])[0], atol=1e-5)


# -- the bank (store + indexes) on its own ------------------------------------------------------

def fill(bank: MemoryBank, n: int, memory_type: str = "fact") -> list[dict[str, Any]]:
    return [bank.remember(str(uuid.uuid4()), f"entry number {i} about topic {i % 7} {uniq()}",
                          memory_type, (), 0.5, "test", NOW) for i in range(n)]


def corrupt_vector(path: Path, vec: bytes) -> None:
    """Replace one stored vector in an index file by its negation (same size, still loadable)."""
    data = bytearray(path.read_bytes())
    at = data.find(vec)
    assert at >= 0
    data[at:at + len(vec)] = (-np.frombuffer(vec, dtype=np.float32)).tobytes()
    path.write_bytes(bytes(data))


def vector_of(bank: MemoryBank, key: int) -> bytes:
    with bank.env.begin(db=bank.vectors_db) as txn:
        return bytes(unpack(txn.get(seq_key(key)))["vec"])


def test_index_file_checksum_catches_a_silently_corrupted_file(tmp_path: Path):
    bank = MemoryBank(tmp_path, HashEmbedder())
    target = fill(bank, 20)[5]
    vec = vector_of(bank, target["key"])
    bank.close()  # saves the index files and records their checksums
    path = bank.indexes.path("fact")
    corrupt_vector(path, vec)  # usearch would load this file without a murmur
    bank = MemoryBank(tmp_path, HashEmbedder())
    found = bank.search_semantic(target["content"], "fact", 1)
    assert found[0]["id"] == target["id"] and found[0]["similarity"] > 0.999
    assert "checksum" in bank.report.rebuilt["fact"] and "episode" in bank.report.loaded
    with bank.env.begin(db=bank.meta_db) as txn:
        meta = unpack(txn.get(b"index:fact"))
    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()  # rebuilt and saved
    bank.close()
    path.write_bytes(b"garbage")
    bank = MemoryBank(tmp_path, HashEmbedder())
    assert "fact" in bank.report.rebuilt and bank.indexes.sizes()["fact"] == 20
    bank.close()
    path.unlink()
    bank = MemoryBank(tmp_path, HashEmbedder())
    assert bank.report.rebuilt["fact"] == "index file missing" and bank.indexes.sizes()["fact"] == 20
    bank.close()


def test_unsaved_writes_are_caught_up_from_lmdb(tmp_path: Path):
    bank = MemoryBank(tmp_path, HashEmbedder())
    fill(bank, 10)
    bank.indexes.save_dirty()
    late = fill(bank, 3, "fact")
    bank.env.close()  # a crash: the index file never saw the last three
    bank = MemoryBank(tmp_path, HashEmbedder())
    found = bank.search_semantic(late[-1]["content"], "fact", 1)
    assert found[0]["id"] == late[-1]["id"] and found[0]["similarity"] > 0.999
    assert "fact" in bank.report.loaded and bank.report.caught_up == 3
    bank.close()


def test_switching_the_model_reembeds_every_vector(tmp_path: Path):
    bank = MemoryBank(tmp_path, HashEmbedder())
    entries = fill(bank, 70) + fill(bank, 5, "episode")
    bank.switch_model(MiniLMEmbedder())
    assert bank.reembedding
    steps = 1
    while bank.reembed_step(batch=32):
        steps += 1
    assert steps >= 3 and bank.reembedded == 75  # in batches, so the actor stays responsive
    with bank.env.begin(db=bank.vectors_db) as txn:
        models = {unpack(raw)["model"] for _, raw in txn.cursor()}
    assert models == {MiniLMEmbedder.model_id}
    assert bank.indexes.sizes()["fact"] == 70 and bank.indexes.sizes()["episode"] == 5
    found = bank.search_semantic(entries[3]["content"], None, 1)
    assert found[0]["id"] == entries[3]["id"]
    bank.close()
    # a restart in the middle of a pass finishes it: the flag is in LMDB
    bank = MemoryBank(tmp_path, HashEmbedder())
    assert bank.reembedding and bank.indexes.sizes()["fact"] == 0
    bank.reembed_step(batch=10)
    bank.env.close()  # crash mid-pass
    bank = MemoryBank(tmp_path, HashEmbedder())
    assert bank.reembedding and bank.indexes.sizes()["fact"] == 10
    while bank.reembed_step():
        pass
    assert bank.indexes.sizes() == {"conversation": 0, "session": 0, "fact": 70, "episode": 5,
                                    "knowledge": 0}
    bank.close()
    bank = MemoryBank(tmp_path, HashEmbedder())
    assert not bank.reembedding and sorted(bank.report.loaded) == sorted(records.MEMORY_TYPES)
    bank.close()


def test_f16_indexes_and_type_filters(tmp_path: Path):
    bank = MemoryBank(tmp_path, HashEmbedder(), "f16")
    facts, episodes = fill(bank, 10), fill(bank, 10, "episode")
    hit = bank.search_semantic(episodes[2]["content"], None, 3)
    assert hit[0]["id"] == episodes[2]["id"] and abs(hit[0]["similarity"] + hit[0]["distance"] - 1) < 1e-5
    assert all(e["type"] == "fact" for e in bank.search_semantic(episodes[2]["content"], "fact", 5))
    assert bank.search_semantic("anything", "session", 5) == []
    assert len(bank.search_semantic("entry", None, 15)) == 15  # merged across both indexes
    bank.close()
    bank = MemoryBank(tmp_path, HashEmbedder(), "f32")
    assert set(bank.report.rebuilt) == set(records.MEMORY_TYPES)  # saved as f16: rebuilt as f32
    assert bank.search_semantic(facts[0]["content"], None, 1)[0]["id"] == facts[0]["id"]
    bank.close()


def test_keyword_search_matches_content_or_tags_and_ranks_by_importance(tmp_path: Path):
    bank = MemoryBank(tmp_path, HashEmbedder())
    word = uniq()
    low = bank.remember("a", f"The {word} pipeline failed.", "fact", (), 0.2, "t", NOW)
    high = bank.remember("b", "Nothing here", "episode", (word.upper(),), 0.9, "t", NOW)
    mid = bank.remember("c", f"{word} again", "fact", (), 0.5, "t", NOW)
    bank.remember("d", "unrelated", "fact", (), 1.0, "t", NOW)
    ids = [e["id"] for e in bank.search_keywords(f"the {word}!", None, 10)]
    assert ids == [high["id"], mid["id"], low["id"]]
    assert [e["id"] for e in bank.search_keywords(word, "fact", 1)] == [mid["id"]]
    assert bank.search_keywords("the and of", None, 10) == []
    assert set(bank.search_keywords(word, None, 10)[0]) == set(records.PUBLIC_FIELDS)
    bank.close()


# -- through the API and the real actor system ---------------------------------------------------

async def post(client, auth, path: str, body: Any) -> tuple[int, Any]:
    r = await client.post(path, json=body, headers=auth)
    return r.status, await r.json()


async def remember(client, auth, content: str, **fields: Any) -> str:
    status, body = await post(client, auth, "/api/memory", {"content": content, **fields})
    assert status == 200, body
    assert body["status"] == "created" and uuid.UUID(body["id"])
    return str(body["id"])


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
        except (ApiError, AssertionError):
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def memory_stats(edge) -> dict[str, Any]:
    pong = await edge.bridge.ask("memory", Ping())
    assert isinstance(pong, Pong)
    return pong.stats


async def kill_memory(edge) -> None:
    old = (await edge.bridge.ask("memory", Ping())).pid
    os.kill(old, signal.SIGKILL)

    async def restarted() -> bool:
        pong = await edge.bridge.ask("memory", Ping(), timeout=1.0)
        return pong.pid != old

    await eventually(restarted, 30)


def today_names() -> set[str]:
    now = datetime.now(UTC)
    return {(now + timedelta(seconds=d)).strftime("%Y-%m-%d") for d in (-5, 0)}


async def test_contract_examples_post_search_semantic_list_get(client, auth, home, edge):
    before = (await (await client.get("/api/status", headers=auth)).json())["components"]["memory"]
    # POST /api/memory: the curl example
    mid = await remember(client, auth, "Oxios uses an event-driven architecture", memory_type="fact",
                         tags=["architecture"], importance=0.8)
    # the daily file has it, GET /api/memory lists it, GET /api/memory/{name} returns it
    listing = await (await client.get("/api/memory?page=1&limit=20", headers=auth)).json()
    assert listing["page"] == 1 and listing["limit"] == 20 and listing["total"] >= 1
    daily = [i for i in listing["items"] if i["category"] == "daily" and i["name"] in today_names()]
    assert daily, listing
    got = await (await client.get(f"/api/memory/{daily[0]['name']}", headers=auth)).json()
    assert got["category"] == "daily" and mid in got["content"]
    assert "Oxios uses an event-driven architecture" in got["content"]
    assert (home / "workspace" / "memory" / f"{daily[0]['name']}.md").exists()
    # POST /api/memory/search: the curl example
    status, found = await post(client, auth, "/api/memory/search", {"query": "architecture", "limit": 5})
    assert status == 200 and found["count"] == len(found["entries"]) >= 1
    entry = next(e for e in found["entries"] if e["id"] == mid)
    assert entry == {"id": mid, "type": "fact", "content": "Oxios uses an event-driven architecture",
                     "tags": ["architecture"], "importance": 0.8, "created_at": entry["created_at"]}
    assert datetime.fromisoformat(entry["created_at"]).utcoffset() == timedelta(0)
    # POST /api/memory/semantic: the curl example
    status, sem = await post(client, auth, "/api/memory/semantic",
                             {"query": "How does the event system work?", "limit": 5})
    assert status == 200 and sem["engine"] == "hnsw" and sem["count"] == len(sem["entries"]) <= 5
    top = sem["entries"][0]
    assert set(top) == {"id", "type", "content", "tags", "importance", "similarity", "distance",
                        "created_at"}
    assert abs(top["similarity"] - (1 - top["distance"])) < 1e-5
    assert [e["distance"] for e in sem["entries"]] == sorted(e["distance"] for e in sem["entries"])
    assert mid in [e["id"] for e in sem["entries"]]
    after = (await (await client.get("/api/status", headers=auth)).json())["components"]["memory"]
    assert after["enabled"] is True
    assert after["total_entries"] == before["total_entries"] + 1
    assert after["index_size"] == before["index_size"] + 1


async def test_knowledge_entries_get_files_of_their_own(client, auth, home):
    word = uniq()
    content = f"# Rust Patterns {word}\n\n## Builder Pattern\n..."
    await remember(client, auth, content, memory_type="knowledge", tags=["rust"])
    await remember(client, auth, content + "\nsecond", memory_type="knowledge")
    name = f"rust-patterns-{word}"
    got = await (await client.get(f"/api/memory/{name}", headers=auth)).json()
    assert got == {"name": name, "category": "knowledge", "content": content + "\n"}
    second = await (await client.get(f"/api/memory/{name}-2", headers=auth)).json()
    assert second["content"].endswith("second\n")
    assert (home / "workspace" / "memory" / "knowledge" / f"{name}.md").exists()
    listing = await (await client.get("/api/memory?limit=500", headers=auth)).json()
    assert {"name": name, "category": "knowledge"} in listing["items"]
    page = await (await client.get("/api/memory?page=2&limit=1", headers=auth)).json()
    assert page["items"] == listing["items"][1:2] and page["total"] == listing["total"]


async def test_errors_are_400_404_413(client, auth):
    cases: list[tuple[str, Any, int, str]] = [
        ("/api/memory", {"content": "x", "memory_type": "conversation"}, 400,
         "memory_type must be fact, episode, or knowledge"),
        ("/api/memory", {"content": "x" * 40_000}, 413, "32 KB"),
        ("/api/memory", {"content": "x", "importance": 2}, 400, "importance"),
        ("/api/memory", {"content": "x", "tags": "t"}, 400, "tags"),
        ("/api/memory", {"memory_type": "fact"}, 400, "content is required"),
        ("/api/memory", [1], 400, "JSON object"),
        ("/api/memory/search", {"query": "x", "limit": 0}, 400, "limit"),
        ("/api/memory/search", {"query": "x", "memory_type": "nope"}, 400, "memory_type"),
        ("/api/memory/semantic", {"limit": 3}, 400, "query is required"),
        ("/api/memory/semantic", {"query": "x", "limit": "10"}, 400, "limit"),
    ]
    for path, body, status, message in cases:
        got_status, got = await post(client, auth, path, body)
        assert got_status == status and message in got["error"], (path, body, got)
    r = await client.post("/api/memory", data=b"{nope", headers={**auth, "Content-Type": "application/json"})
    assert r.status == 400
    assert (await client.get("/api/memory/no-such-memory", headers=auth)).status == 404
    for bad in ("..%2F..%2Fconfig.json", ".hidden", "a..b", "%2E%2E"):
        r = await client.get(f"/api/memory/{bad}", headers=auth)
        assert r.status in (400, 404), bad
        assert "error" in await r.json()
    assert (await client.get("/api/memory/.hidden", headers=auth)).status == 400
    status, empty = await post(client, auth, "/api/memory/search", {"query": "the and of"})
    assert status == 200 and empty == {"count": 0, "entries": []}
    assert (await client.get("/api/memory")).status == 401


async def test_type_filters_and_ranking_through_the_api(client, auth):
    word = uniq()
    low = await remember(client, auth, f"{word} deploy went fine", memory_type="episode", importance=0.1)
    high = await remember(client, auth, "release notes", memory_type="fact", tags=[word], importance=0.95)
    status, found = await post(client, auth, "/api/memory/search", {"query": f"{word}?"})
    assert [e["id"] for e in found["entries"]] == [high, low]
    status, found = await post(client, auth, "/api/memory/search", {"query": word, "memory_type": "episode"})
    assert [e["id"] for e in found["entries"]] == [low]
    status, sem = await post(client, auth, "/api/memory/semantic",
                             {"query": f"{word} deploy went fine", "memory_type": "episode", "limit": 3})
    assert sem["entries"][0]["id"] == low and all(e["type"] == "episode" for e in sem["entries"])
    status, sem = await post(client, auth, "/api/memory/semantic", {"query": "x", "memory_type": "session"})
    assert status == 200 and sem == {"count": 0, "entries": [], "engine": "hnsw"}


async def test_writes_publish_events_without_content_and_are_audited(client, auth, edge):
    secret = f"secret content {uniq()}"
    mid = await remember(client, auth, secret, memory_type="episode")
    await post(client, auth, "/api/memory/search", {"query": secret})

    async def published() -> list[dict[str, Any]]:
        events = [unpack(raw) for _, raw in event_log.read_after(edge.store, 0)]
        stored = [e for e in events if e["type"] == "memory_stored" and e.get("memory_id") == mid]
        recalled = [e for e in events if e["type"] == "memory_recalled" and mid in e.get("memory_ids", [])]
        return [*stored, *recalled] if stored and recalled else []

    stored, recalled = await eventually(published)
    assert stored["memory_type"] == "episode" and recalled["count"] >= 1 and recalled["mode"] == "keyword"
    assert all(secret not in repr(e) for e in (stored, recalled))

    async def audited() -> bool:
        return any(e["action"] == "memory_write" and e["resource"] == mid
                   for e in chain.for_agent(edge.store, "api"))

    assert await eventually(audited)


async def test_written_files_are_committed_to_the_workspace_repository(client, auth, home):
    import pygit2

    mid = await remember(client, auth, f"committed {uniq()}", memory_type="fact")

    async def committed() -> list[str]:
        repo = pygit2.Repository(str(home / "workspace"))
        for commit in repo.walk(repo.head.target):
            if mid in commit.message:
                parent = commit.parents[0].tree if commit.parents else repo.get(repo.TreeBuilder().write())
                return [d.new_file.path for d in parent.diff_to_tree(commit.tree).deltas] or ["?"]
        return []

    paths = await eventually(committed)
    assert any(p.startswith("memory/") and p.endswith(".md") for p in paths), paths


async def test_corrupted_index_is_rebuilt_when_the_actor_restarts(client, auth, edge, home):
    content = f"checksum guarded {uniq()} entry"
    mid = await remember(client, auth, content, memory_type="fact")
    assert "fact" in (await edge.bridge.ask("memory", SaveIndexes())).types
    entry = records.get_entry(edge.store, mid)
    assert entry is not None
    vec = edge.store.get(records.DOMAIN, records.VECTORS_DB, seq_key(entry["key"]))["vec"]
    path = state_dir(home, records.DOMAIN) / "hnsw" / "fact.usearch"
    corrupt_vector(path, vec)
    await kill_memory(edge)
    status, sem = await post(client, auth, "/api/memory/semantic",
                             {"query": content, "memory_type": "fact", "limit": 1})
    assert status == 200 and sem["entries"][0]["id"] == mid and sem["entries"][0]["similarity"] > 0.99
    stats = await memory_stats(edge)
    assert "checksum" in stats["opened"]["rebuilt"]["fact"]
    meta = records.index_meta(edge.store, "fact")
    assert meta is not None and meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


async def test_writes_not_yet_in_the_index_file_survive_sigkill(client, auth, edge):
    await remember(client, auth, f"saved before {uniq()}", memory_type="episode")
    saved = await edge.bridge.ask("memory", SaveIndexes())
    assert isinstance(saved, IndexesSaved)
    content = f"acknowledged just before the crash {uniq()}"
    mid = await remember(client, auth, content, memory_type="episode")
    await kill_memory(edge)  # well before the index would have been saved
    status, sem = await post(client, auth, "/api/memory/semantic",
                             {"query": content, "memory_type": "episode", "limit": 1})
    assert sem["entries"][0]["id"] == mid and sem["entries"][0]["similarity"] > 0.99
    stats = await memory_stats(edge)
    assert "episode" in stats["opened"]["loaded"] and stats["opened"]["caught_up"] >= 1
    status, found = await post(client, auth, "/api/memory/search", {"query": content.split()[-1]})
    assert [e["id"] for e in found["entries"]] == [mid]


async def put_memory_config(client, auth, edge, **fields: Any) -> None:
    r = await client.put("/api/config", json={"memory": fields}, headers=auth)
    assert r.status == 200, await r.json()
    edge.limiter.per_minute = 10**9


async def test_changing_the_model_reembeds_and_disabling_refuses(client, auth, edge):
    content = f"model switch survivor {uniq()}"
    mid = await remember(client, auth, content, memory_type="fact")
    try:
        await put_memory_config(client, auth, edge, embedding="hash", index_dtype="f16")

        async def all_hash() -> bool:
            stats = await memory_stats(edge)
            return (stats["model"] == HashEmbedder.model_id and not stats["reembedding"]
                    and stats["dtype"] == "f16")

        await eventually(all_hash, 60)
        assert records.vector_models(edge.store) == {HashEmbedder.model_id: records.stats(
            edge.store, True)["index_size"]}
        status, sem = await post(client, auth, "/api/memory/semantic", {"query": content, "limit": 1})
        assert sem["entries"][0]["id"] == mid and sem["entries"][0]["similarity"] > 0.99
        await put_memory_config(client, auth, edge, enabled=False)
        status, body = await post(client, auth, "/api/memory", {"content": "no"})
        assert status == 503 and "disabled" in body["error"]
    finally:
        await put_memory_config(client, auth, edge, embedding="minilm", index_dtype="f32", enabled=True)

    async def all_minilm() -> bool:
        stats = await memory_stats(edge)
        return stats["model"] == MiniLMEmbedder.model_id and not stats["reembedding"]

    await eventually(all_minilm, 120)
    assert set(records.vector_models(edge.store)) == {MiniLMEmbedder.model_id}
    status, sem = await post(client, auth, "/api/memory/semantic", {"query": content, "limit": 1})
    assert sem["entries"][0]["id"] == mid


def test_large_rebuilds_run_in_steps_and_are_saved_only_when_whole(tmp_path: Path):
    bank = MemoryBank(tmp_path, HashEmbedder())
    entries = fill(bank, 50)
    bank.close()
    bank.indexes.path("fact").unlink()
    bank = MemoryBank(tmp_path, HashEmbedder(), sync_rebuild_max=0)  # as if the store were big
    assert bank.indexes.rebuilding and bank.indexes.sizes()["fact"] == 0
    assert bank.indexes.rebuild_step(20)  # 20 of 50
    late = bank.remember("late", f"written during the rebuild {uniq()}", "fact", (), 0.5, "t", NOW)
    assert bank.indexes.sizes()["fact"] == 21
    assert "fact" not in bank.indexes.save_dirty()  # a partial index is never recorded as whole
    assert not bank.indexes.path("fact").exists()
    while bank.background_step():
        pass
    assert not bank.indexes.rebuilding
    assert bank.indexes.sizes()["fact"] == 51  # each vector once, the late one included
    assert bank.indexes.path("fact").exists()
    for target in (entries[40], late):
        assert bank.search_semantic(target["content"], "fact", 1)[0]["id"] == target["id"]
    bank.close()
    bank = MemoryBank(tmp_path, HashEmbedder())
    assert "fact" in bank.report.loaded and bank.indexes.sizes()["fact"] == 51
    bank.close()
