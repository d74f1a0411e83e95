"""§16 Git: the workspace repository, log, tags, verify (corruption), restore."""

from __future__ import annotations

import os
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pygit2
import pytest

from oxios_actors.paths import workspace_root
from oxios_actors.workspace import gitrepo
from oxios_actors.workspace.integrity import verify
from oxios_actors.workspace.messages import CommitPaths, Committed, TagCommit, Tagged

from .test_workspace import AuditRecorder, ask, asys, start_workspace  # noqa: F401  (fixture)


@pytest.fixture
def ws(edge: Any) -> Path:
    return workspace_root(edge.home, edge.config)


async def put(client: Any, auth: Any, rel: str, data: bytes) -> None:
    r = await client.put(f"/api/workspace/file/{rel}", data=data, headers=auth)
    assert r.status == 200, await r.text()


async def head_hash(client: Any, auth: Any) -> str:
    r = await client.get("/api/git/log", headers=auth)
    return str((await r.json())["entries"][0]["hash"])


def loose_path(root: Path, oid: str) -> Path:
    return root / ".git" / "objects" / oid[:2] / oid[2:]


def small_repo(tmp_path: Path) -> tuple[Path, pygit2.Repository]:
    root = tmp_path / "repo"
    sig = gitrepo.signature("test")
    repo = gitrepo.ensure_repo(root, sig)
    (root / "a").mkdir()
    (root / "a" / "b.txt").write_text("hello")
    gitrepo.commit_paths(repo, root, ["a/b.txt"], "add b", sig, sig)
    return root, repo


# -- the repository ---------------------------------------------------------------
async def test_workspace_is_a_repository_with_an_initial_commit_on_main(client: Any, auth: Any,
                                                                        ws: Path) -> None:
    repo = pygit2.Repository(str(ws))
    assert repo.head.name == "refs/heads/main"
    first = list(repo.walk(repo.head.target))[-1]
    assert first.message.strip() == "Initial commit" and not first.parents
    assert "programs" in (ws / ".gitignore").read_text()


async def test_log_has_the_documented_entries_newest_first_at_most_100(client: Any, auth: Any) -> None:
    for i in range(101):
        await put(client, auth, f"logtest/{i}.txt", str(i).encode())
    r = await client.get("/api/git/log", headers=auth)
    assert r.status == 200
    entries = (await r.json())["entries"]
    assert len(entries) == 100
    newest = entries[0]
    assert set(newest) == {"hash", "short_hash", "message", "timestamp", "author"}
    assert newest["message"] == "Update logtest/100.txt" and newest["author"] == "api"
    assert len(newest["hash"]) == 40 and newest["short_hash"] == newest["hash"][:7]
    assert datetime.fromisoformat(newest["timestamp"]).utcoffset() is not None  # RFC 3339 with offset
    assert entries[1]["message"] == "Update logtest/99.txt"


async def test_tags_lists_tags_only(client: Any, auth: Any, edge: Any) -> None:
    await put(client, auth, "tagged.txt", b"v")
    head = await head_hash(client, auth)
    reply = await edge.bridge.ask("workspace", TagCommit("v0.1.0"))
    assert isinstance(reply, Tagged) and reply.target == head
    await edge.bridge.ask("workspace", TagCommit("seed-evolution-3", head[:8], "annotated"))
    r = await client.get("/api/git/tags", headers=auth)
    assert r.status == 200
    tags = (await r.json())["tags"]
    assert {"v0.1.0", "seed-evolution-3"} <= set(tags) and "main" not in tags


async def test_other_services_commit_what_they_wrote(edge: Any, ws: Path, client: Any, auth: Any) -> None:
    (ws / "memory-export").mkdir(exist_ok=True)
    (ws / "memory-export" / "facts.json").write_text("[]")
    reply = await edge.bridge.ask("workspace", CommitPaths(("memory-export",), "Export memory", "memory"))
    assert isinstance(reply, Committed) and reply.commit
    r = await client.get("/api/git/log", headers=auth)
    entry = (await r.json())["entries"][0]
    assert (entry["message"], entry["author"]) == ("Export memory", "memory")
    reply = await edge.bridge.ask("workspace", CommitPaths(("memory-export",), "again", "memory"))
    assert reply.commit is None  # nothing changed, no empty commit
    with pytest.raises(Exception) as info:
        await edge.bridge.ask("workspace", CommitPaths(("../outside",), "escape", "memory"))
    assert getattr(info.value, "status", None) == 403


# -- verify ------------------------------------------------------------------------
def test_verify_reports_each_kind_of_damage(tmp_path: Path) -> None:
    root, repo = small_repo(tmp_path)
    assert verify(root)["valid"] is True
    blob = str(repo.head.peel(pygit2.Commit).tree["a/b.txt"].id)
    path = loose_path(root, blob)
    original = path.read_bytes()
    os.chmod(path, 0o644)

    path.write_bytes(zlib.compress(b"blob 5\x00jello"))  # intact zlib, wrong content
    report = verify(root)
    assert report["valid"] is False and blob in report["corrupt_objects"]
    assert any("hash mismatch" in e for e in report["errors"])

    path.write_bytes(original[: len(original) // 2])  # truncated: libgit2 would spin forever on this
    report = verify(root)
    assert report["valid"] is False and blob in report["corrupt_objects"]

    path.write_bytes(b"not zlib at all")
    assert verify(root)["valid"] is False

    path.unlink()  # gone entirely: found by walking the history
    report = verify(root)
    assert report["valid"] is False and blob in report["missing_objects"]

    path.write_bytes(original)
    assert verify(root)["valid"] is True


async def test_verify_endpoint_finds_a_corrupted_object(client: Any, auth: Any, ws: Path) -> None:
    r = await client.post("/api/git/verify", headers=auth)
    assert r.status == 200
    body = await r.json()
    assert body["valid"] is True and body["objects_checked"] > 0 and body["commits_checked"] > 0
    await put(client, auth, "verify/victim.txt", b"precious content")
    repo = pygit2.Repository(str(ws))
    blob = str(repo.head.peel(pygit2.Commit).tree["verify/victim.txt"].id)
    path = loose_path(ws, blob)
    original = path.read_bytes()
    os.chmod(path, 0o644)
    path.write_bytes(zlib.compress(b"blob 16\x00tampered content"))
    try:
        r = await client.post("/api/git/verify", headers=auth)
        body = await r.json()
        assert body["valid"] is False
        assert blob in body["corrupt_objects"] and body["errors"]
    finally:
        path.write_bytes(original)
    r = await client.post("/api/git/verify", headers=auth)
    assert (await r.json())["valid"] is True


# -- restore -----------------------------------------------------------------------
async def test_restore_by_full_and_abbreviated_hash(client: Any, auth: Any, ws: Path) -> None:
    await put(client, auth, "restore/nested/dir/file.txt", b"version one")
    v1 = await head_hash(client, auth)
    await put(client, auth, "restore/nested/dir/file.txt", b"version two")
    r = await client.post("/api/git/restore", json={"hash": v1, "path": "restore/nested/dir/file.txt"},
                          headers=auth)
    assert r.status == 200
    assert await r.json() == {"restored": "restore/nested/dir/file.txt", "from": v1}
    assert (ws / "restore/nested/dir/file.txt").read_bytes() == b"version one"
    r = await client.get("/api/git/log", headers=auth)
    entry = (await r.json())["entries"][0]
    assert entry["message"] == f"Restore restore/nested/dir/file.txt from {v1[:7]}"
    await put(client, auth, "restore/nested/dir/file.txt", b"version three")
    r = await client.post("/api/git/restore", json={"hash": v1[:7], "path": "restore/nested/dir/file.txt"},
                          headers=auth)
    assert r.status == 200 and (await r.json())["from"] == v1[:7]
    assert (ws / "restore/nested/dir/file.txt").read_bytes() == b"version one"


async def test_restore_a_deleted_file(client: Any, auth: Any, ws: Path) -> None:
    await put(client, auth, "restore/gone.txt", b"bring me back")
    h = await head_hash(client, auth)
    (ws / "restore/gone.txt").unlink()
    r = await client.post("/api/git/restore", json={"hash": h, "path": "restore/gone.txt"}, headers=auth)
    assert r.status == 200
    assert (ws / "restore/gone.txt").read_bytes() == b"bring me back"


@pytest.mark.parametrize("body,status", [
    ({"hash": "0" * 40, "path": "restore/gone.txt"}, 404),
    ({"hash": "abcdef12", "path": "restore/gone.txt"}, 404),
    ({"hash": "HEAD", "path": ".gitignore"}, 400),
    ({"hash": "HEAD~1", "path": ".gitignore"}, 400),
    ({"path": ".gitignore"}, 400),
    ({"hash": "abcd"}, 400),
    ({"hash": "HEAD_HASH", "path": "no/such/file.txt"}, 404),
    ({"hash": "HEAD_HASH", "path": "../../etc/passwd"}, 403),
    ({"hash": "HEAD_HASH", "path": "/etc/passwd"}, 403),
    ({"hash": "HEAD_HASH", "path": ".git/config"}, 403),
    ({"hash": "HEAD_HASH", "path": "restore"}, 400),
])
async def test_restore_errors(client: Any, auth: Any, body: dict[str, Any], status: int) -> None:
    if body.get("hash") == "HEAD_HASH":
        body = {**body, "hash": await head_hash(client, auth)}
    r = await client.post("/api/git/restore", json=body, headers=auth)
    assert r.status == status, await r.text()
    assert "error" in await r.json()


async def test_restore_through_an_escaping_symlink_is_forbidden(
        client: Any, auth: Any, ws: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    await put(client, auth, "linkrestore/file.txt", b"inside")
    h = await head_hash(client, auth)
    outside = tmp_path_factory.mktemp("restore-outside")
    (ws / "linkrestore/file.txt").unlink()
    (ws / "linkrestore").rmdir()
    (ws / "linkrestore").symlink_to(outside)
    try:
        r = await client.post("/api/git/restore", json={"hash": h, "path": "linkrestore/file.txt"},
                              headers=auth)
        assert r.status == 403
        assert not (outside / "file.txt").exists()
    finally:
        (ws / "linkrestore").unlink()


def test_restore_is_audited(asys: Any, tmp_path: Path) -> None:  # noqa: F811
    from oxios_actors.workspace.messages import Restored, RestoreFile, WriteFile

    actor, recorder = start_workspace(asys, tmp_path)
    first = ask(asys, actor, WriteFile("doc.md", b"one", "writer"))
    ask(asys, actor, WriteFile("doc.md", b"two", "writer"))
    reply = ask(asys, actor, RestoreFile(first.commit[:10], "doc.md", "api"))
    assert isinstance(reply, Restored) and reply.source == first.commit
    records = asys.ask(recorder, "dump", 5)
    assert (records[-1].agent_name, records[-1].action, records[-1].resource) == ("api", "git_restore", "doc.md")


def test_a_stale_lock_met_during_a_commit_is_cleared(tmp_path: Path) -> None:
    root, repo = small_repo(tmp_path)
    lock = root / ".git" / "index.lock"
    lock.write_bytes(b"")
    old = 1_000_000_000
    os.utime(lock, (old, old))
    assert gitrepo.clear_stale_locks(root, older_than=10) == ["index.lock"]
    fresh = root / ".git" / "index.lock"
    fresh.write_bytes(b"")
    assert gitrepo.clear_stale_locks(root, older_than=10) == []  # a live writer's lock stays
