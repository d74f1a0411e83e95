"""§5 Workspace: tree, read, write; path safety; the Workspace actor's audit and restart."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pygit2
import pytest
from thespian.actors import Actor, ActorSystem
from yarl import URL

from oxios_actors.audit.messages import Append
from oxios_actors.messages import Answer, Ask, Configure, Failure, Ping
from oxios_actors.paths import workspace_root
from oxios_actors.system.config import defaults
from oxios_actors.workspace.files import MAX_WRITE_BYTES
from oxios_actors.workspace.messages import FileWritten, WriteFile
from oxios_actors.workspace.pathguard import UnsafePath, confine, parts_of

from .test_runtime import wait_for_new_pid


@pytest.fixture
def ws(edge: Any) -> Path:
    return workspace_root(edge.home, edge.config)


async def raw(client: Any, method: str, path: str, **kw: Any) -> Any:
    """A request whose path is sent exactly as written (no client-side normalisation)."""
    url = URL(f"http://{client.host}:{client.port}{path}", encoded=True)
    return await client.session.request(method, url, **kw)


def head_commit(root: Path) -> pygit2.Commit:
    repo = pygit2.Repository(str(root))
    return repo.head.peel(pygit2.Commit)


# -- the shared path guard ---------------------------------------------------
@pytest.mark.parametrize("rel,status", [
    ("../x", 403), ("a/../../x", 403), ("a/..", 403), ("/etc/passwd", 403), ("\\etc", 403),
    ("C:/x", 403), (".git/config", 403), ("a/.GIT/x", 403), ("a\x00b", 400), ("x" * 5000, 400),
])
def test_unsafe_paths_are_refused(tmp_path: Path, rel: str, status: int) -> None:
    with pytest.raises(UnsafePath) as info:
        confine(tmp_path, rel)
    assert info.value.status == status


def test_safe_paths_resolve_inside(tmp_path: Path) -> None:
    assert parts_of("./a//b/./c.txt") == ["a", "b", "c.txt"]
    assert confine(tmp_path, "a/b/c.txt") == tmp_path.resolve() / "a/b/c.txt"
    assert confine(tmp_path, "") == tmp_path.resolve()
    (tmp_path / "real").mkdir()
    (tmp_path / "inner").symlink_to(tmp_path / "real")  # a link that stays inside is fine
    assert confine(tmp_path, "inner/x") == tmp_path.resolve() / "real/x"


def test_symlinks_leaving_the_root_are_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "dirlink").symlink_to(outside)
    (root / "filelink").symlink_to(outside / "secret")
    (root / "dangling").symlink_to(outside / "not-yet")
    (root / "gitlink").symlink_to(root / ".git")
    for rel in ("dirlink/new/file.txt", "filelink", "dangling", "gitlink/config"):
        with pytest.raises(UnsafePath) as info:
            confine(root, rel)
        assert info.value.status == 403, rel


# -- the actor on simpleSystemBase (fast, and its audit records are visible) ---
class AuditRecorder(Actor):
    """Stands in the directory as "audit" and keeps what it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[Any] = []

    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, Append):
            self.records.extend(msg.records)
        elif msg == "dump":
            self.send(sender, list(self.records))


@pytest.fixture
def asys() -> Iterator[ActorSystem]:
    system = ActorSystem("simpleSystemBase", transientUnique=True)
    yield system
    system.shutdown()


def ask(asys: ActorSystem, addr: Any, request: Any, timeout: float = 10.0) -> Any:
    reply = asys.ask(addr, Ask("r1", request), timeout)
    assert isinstance(reply, Answer), reply
    return reply.reply


def start_workspace(asys: ActorSystem, home: Path) -> tuple[Any, Any]:
    recorder = asys.createActor(AuditRecorder)
    actor = asys.createActor("oxios_actors.workspace.actor.Workspace")
    ready = asys.ask(actor, Configure("workspace", str(home), {"audit": recorder}, defaults()), 10)
    assert ready is not None and ready.name == "workspace"
    return actor, recorder


def test_actor_writes_commits_and_audits(asys: ActorSystem, tmp_path: Path) -> None:
    actor, recorder = start_workspace(asys, tmp_path)
    root = tmp_path / "workspace"
    repo = pygit2.Repository(str(root))
    assert repo.head.name == "refs/heads/main"
    assert head_commit(root).message.strip() == "Initial commit"
    assert (root / ".gitignore").is_file()
    reply = ask(asys, actor, WriteFile("notes/today.md", b"# hi\n", "agent-7"))
    assert isinstance(reply, FileWritten) and reply.path == "notes/today.md" and reply.commit
    commit = head_commit(root)
    assert str(commit.id) == reply.commit and commit.author.name == "agent-7"
    blob = commit.tree["notes/today.md"]
    assert isinstance(blob, pygit2.Blob) and blob.data == b"# hi\n"
    records = asys.ask(recorder, "dump", 5)
    assert [(r.agent_name, r.action, r.resource, r.allowed) for r in records] == [
        ("agent-7", "workspace_write", "notes/today.md", True)]


def test_actor_refuses_escapes_before_creating_anything(asys: ActorSystem, tmp_path: Path) -> None:
    actor, recorder = start_workspace(asys, tmp_path)
    root = tmp_path / "workspace"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "out").symlink_to(outside)
    for rel in ("../escape.txt", "out/sub/deep.txt", "/tmp/abs.txt", ".git/hooks/post-commit"):
        reply = ask(asys, actor, WriteFile(rel, b"x", "api"))
        assert isinstance(reply, Failure) and reply.status == 403, (rel, reply)
    assert not (tmp_path / "escape.txt").exists()
    assert not (outside / "sub").exists()  # not even the parent directory
    assert not (root / ".git/hooks/post-commit").exists()
    records = asys.ask(recorder, "dump", 5)
    assert len(records) == 4 and not any(r.allowed for r in records)


# -- HTTP ----------------------------------------------------------------------
async def test_tree_lists_one_level_dirs_first_with_hidden_files(client: Any, auth: Any, ws: Path) -> None:
    for rel in ("treetest/b.txt", "treetest/a.md", "treetest/.hidden", "treetest/zdir/x", "treetest/Adir/y"):
        r = await client.put(f"/api/workspace/file/{rel}", data=b"12345", headers=auth)
        assert r.status == 200
    r = await client.get("/api/workspace/tree", params={"dir": "treetest"}, headers=auth)
    assert r.status == 200
    assert await r.json() == [
        {"name": "Adir", "is_dir": True, "size": 0}, {"name": "zdir", "is_dir": True, "size": 0},
        {"name": ".hidden", "is_dir": False, "size": 5}, {"name": "a.md", "is_dir": False, "size": 5},
        {"name": "b.txt", "is_dir": False, "size": 5}]
    r = await client.get("/api/workspace/tree", headers=auth)
    names = [e["name"] for e in await r.json()]
    assert ".gitignore" in names and "treetest" in names
    r = await client.get("/api/workspace/tree", params={"dir": "no/such/dir"}, headers=auth)
    assert r.status == 404 and "error" in await r.json()
    r = await client.get("/api/workspace/tree", params={"dir": "../.."}, headers=auth)
    assert r.status == 403


@pytest.mark.parametrize("name,ctype", [
    ("a.md", "text/markdown; charset=utf-8"), ("a.json", "application/json"),
    ("a.toml", "application/toml"), ("a.yaml", "application/yaml"), ("a.yml", "application/yaml"),
    ("a.txt", "text/plain; charset=utf-8"), ("a.html", "text/html"), ("a.css", "text/css"),
    ("a.js", "application/javascript"), ("a.rs", "text/plain"), ("Makefile", "text/plain"),
])
async def test_read_has_the_documented_content_type(client: Any, auth: Any, name: str, ctype: str) -> None:
    r = await client.put(f"/api/workspace/file/types/{name}", data=b"content", headers=auth)
    assert r.status == 200
    r = await client.get(f"/api/workspace/file/types/{name}", headers=auth)
    assert r.status == 200
    assert r.headers["Content-Type"] == ctype
    assert await r.read() == b"content"


async def test_contract_examples(client: Any, auth: Any) -> None:
    body = 'fn main() { println!("Hello, Oxios!"); }'
    r = await client.put("/api/workspace/file/src/main.rs", data=body,
                         headers={**auth, "Content-Type": "text/plain"})
    assert r.status == 200 and await r.read() == b""
    r = await client.get("/api/workspace/tree?dir=src", headers=auth)
    assert {"name": "main.rs", "is_dir": False, "size": len(body)} in await r.json()
    r = await client.get("/api/workspace/file/src/main.rs", headers=auth)
    assert await r.text() == body


async def test_write_creates_parents_and_is_committed(client: Any, auth: Any, ws: Path) -> None:
    r = await client.put("/api/workspace/file/deep/er/still/file.txt", data=b"v1", headers=auth)
    assert r.status == 200
    assert (ws / "deep/er/still/file.txt").read_bytes() == b"v1"
    commit = head_commit(ws)
    assert commit.author.name == "api"
    assert commit.message.strip() == "Update deep/er/still/file.txt"
    r = await client.get("/api/workspace/file/deep/er/still/missing.txt", headers=auth)
    assert r.status == 404
    r = await client.get("/api/workspace/file/deep/er", headers=auth)
    assert r.status == 400


async def test_write_limit_is_one_megabyte(client: Any, auth: Any, ws: Path) -> None:
    r = await client.put("/api/workspace/file/big/exact.bin", data=b"a" * MAX_WRITE_BYTES, headers=auth)
    assert r.status == 200
    r = await client.put("/api/workspace/file/big/over.bin", data=b"a" * (MAX_WRITE_BYTES + 1), headers=auth)
    assert r.status == 413 and "error" in await r.json()
    assert not (ws / "big/over.bin").exists()

    async def chunks() -> Any:  # no Content-Length: the limit holds for a streamed body too
        for _ in range(17):
            yield b"b" * 65536
    r = await client.put("/api/workspace/file/big/streamed.bin", data=chunks(), headers=auth)
    assert r.status == 413
    assert not (ws / "big/streamed.bin").exists()


@pytest.mark.parametrize("path", [
    "/api/workspace/file/%2e%2e/%2e%2e/escape-enc.txt",
    "/api/workspace/file/..%2F..%2Fescape-slash.txt",
    "/api/workspace/file/a/../../escape-raw.txt",
    "/api/workspace/file/%2Ftmp%2Fescape-abs.txt",
    "/api/workspace/file//tmp/escape-abs2.txt",
    "/api/workspace/file/.git/config",
    "/api/workspace/file/sub/%2E%2E/%2E%2E/escape-upper.txt",
])
async def test_traversal_is_forbidden(client: Any, auth: Any, ws: Path, path: str) -> None:
    r = await raw(client, "PUT", path, data=b"pwned", headers=auth)
    assert r.status == 403, await r.text()
    assert "error" in await r.json()
    r = await raw(client, "GET", path, headers=auth)
    assert r.status == 403
    name = path.rsplit("%2F", 1)[-1].rsplit("/", 1)[-1]
    for parent in (ws.parent, ws.parent.parent, Path("/tmp")):
        assert not (parent / name).exists() or name == "config"


async def test_symlink_escape_is_forbidden(client: Any, auth: Any, ws: Path,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text("top secret")
    (ws / "escape-dir").symlink_to(outside)
    (ws / "escape-file.txt").symlink_to(outside / "secret.txt")
    try:
        r = await client.get("/api/workspace/file/escape-file.txt", headers=auth)
        assert r.status == 403
        r = await client.get("/api/workspace/file/escape-dir/secret.txt", headers=auth)
        assert r.status == 403
        r = await client.get("/api/workspace/tree", params={"dir": "escape-dir"}, headers=auth)
        assert r.status == 403
        r = await client.put("/api/workspace/file/escape-dir/new/file.txt", data=b"x", headers=auth)
        assert r.status == 403
        r = await client.put("/api/workspace/file/escape-file.txt", data=b"x", headers=auth)
        assert r.status == 403
        assert not (outside / "new").exists()  # refused before anything was created
        assert (outside / "secret.txt").read_text() == "top secret"
        r = await client.get("/api/workspace/tree", headers=auth)  # listed, not followed
        entries = {e["name"]: e for e in await r.json()}
        assert entries["escape-dir"]["is_dir"] is False
    finally:
        (ws / "escape-dir").unlink()
        (ws / "escape-file.txt").unlink()


async def test_killed_workspace_actor_comes_back_past_a_stale_index_lock(
        client: Any, auth: Any, edge: Any, ws: Path) -> None:
    old = await edge.bridge.ask("workspace", Ping())
    lock = ws / ".git" / "index.lock"
    lock.write_bytes(b"")  # what a writer killed in the middle of a commit leaves behind
    os.kill(old.pid, signal.SIGKILL)
    await wait_for_new_pid(edge, "workspace", old.pid)
    r = await client.put("/api/workspace/file/after-restart.txt", data=b"still here", headers=auth)
    assert r.status == 200, await r.text()
    assert not lock.exists()
    assert head_commit(ws).message.strip() == "Update after-restart.txt"
    r = await client.get("/api/workspace/file/after-restart.txt", headers=auth)
    assert await r.read() == b"still here"
