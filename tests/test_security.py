"""Security kernel (§11 Audit, §12 Permissions, §20 Approvals) and the tool pipeline."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oxios_actors.audit import chain
from oxios_actors.events import log as event_log
from oxios_actors.messages import Ping
from oxios_actors.store import unpack
from oxios_actors.tools.executors import ToolResult
from oxios_actors.tools.host import RunTool

ROOT = Path(__file__).resolve().parents[1]


async def run_tool(edge, agent: str, tool: str, **args: Any) -> ToolResult:
    result = await edge.bridge.ask("tools", RunTool(agent, tool, args), timeout=30)
    assert isinstance(result, ToolResult)
    return result


async def put_perms(client, auth, agent: str, **fields: Any) -> None:
    r = await client.put(f"/api/permissions/{agent}", json=fields, headers=auth)
    assert r.status == 200, await r.text()
    assert await r.json() == {"status": "updated", "agent": agent}


async def set_config(client, auth, edge, patch: dict[str, Any]) -> None:
    r = await client.put("/api/config", json=patch, headers=auth)
    assert r.status == 200, await r.text()
    edge.limiter.per_minute = 10**9


@pytest.fixture
async def no_approvals(client, auth, edge):
    await set_config(client, auth, edge, {"approvals": {"require": []}})
    yield
    await set_config(client, auth, edge, {"approvals": {"require": [
        "use_tool:shell_exec", "access_path:outside", "manage_programs", "system_config"]}})


def workspace(home: Path) -> Path:
    ws = home / "workspace"
    ws.mkdir(exist_ok=True)
    return ws


# -- permissions ---------------------------------------------------------------
async def test_permissions_get_put_partial(client, auth):
    r = await client.get("/api/permissions/perm-agent", headers=auth)
    assert r.status == 404 and "error" in await r.json()
    await put_perms(client, auth, "perm-agent", network_access=False, max_execution_time_secs=120)
    body = await (await client.get("/api/permissions/perm-agent", headers=auth)).json()
    assert body["agent_name"] == "perm-agent" and body["max_execution_time_secs"] == 120
    assert body["network_access"] is False and body["max_memory_mb"] == 512  # default kept
    assert "/etc/**" in body["denied_paths"] and body["can_fork"] is False
    await put_perms(client, auth, "perm-agent", allowed_tools=["file_read"])
    body = await (await client.get("/api/permissions/perm-agent", headers=auth)).json()
    assert body["allowed_tools"] == ["file_read"] and body["max_execution_time_secs"] == 120
    for bad in ({"network_access": "yes"}, {"max_memory_mb": 0}, {"max_memory_mb": True},
                {"allowed_tools": "file_read"}, {"root": True}):
        r = await client.put("/api/permissions/perm-agent", json=bad, headers=auth)
        assert r.status == 400, bad
    r = await client.put("/api/permissions/perm-agent", data=b"{", headers={**auth, "Content-Type": "application/json"})
    assert r.status == 400


# -- tools through the pipeline ---------------------------------------------------
async def test_agent_without_permissions_is_denied_and_audited(edge):
    result = await run_tool(edge, "nobody", "file_read", path="x.txt")
    assert not result.ok and "no permissions record" in (result.error or "")
    entries = chain.for_agent(edge.store, "nobody")
    assert entries and entries[-1]["allowed"] is False and entries[-1]["action"] == "file_read"


async def test_file_tools_inside_the_workspace(client, auth, edge, home):
    ws = workspace(home)
    await put_perms(client, auth, "writer")
    result = await run_tool(edge, "writer", "file_write", path="notes/a.txt", content="hello")
    assert result.ok, result
    assert (ws / "notes" / "a.txt").read_text() == "hello"
    result = await run_tool(edge, "writer", "file_read", path="notes/a.txt")
    assert result.ok and result.output == "hello"
    listing = await run_tool(edge, "writer", "list_dir", path="notes")
    assert listing.ok and "a.txt" in listing.output
    await asyncio.sleep(0.1)
    tools = ("file_write", "file_read", "list_dir")
    last = [e for e in chain.for_agent(edge.store, "writer") if e["action"] in tools][-3:]
    assert [e["action"] for e in last] == ["file_write", "file_read", "list_dir"]
    assert all(e["allowed"] for e in last)
    assert last[0]["resource"] == str((ws / "notes" / "a.txt").resolve())


async def test_tool_not_allowed_and_bad_arguments(client, auth, edge):
    await put_perms(client, auth, "reader", allowed_tools=["file_read"])
    result = await run_tool(edge, "reader", "file_write", path="b.txt", content="x")
    assert not result.ok and "not allowed" in (result.error or "")
    result = await run_tool(edge, "reader", "file_read")
    assert not result.ok and "missing argument: path" in (result.error or "")
    result = await run_tool(edge, "reader", "rm_rf", path="/")
    assert not result.ok and "unknown tool" in (result.error or "")


async def test_denied_paths_beat_allowed_and_symlinks_cannot_escape(client, auth, edge, home, tmp_path):
    ws = workspace(home)
    (ws / "secret").mkdir(exist_ok=True)
    (ws / "secret" / "key.txt").write_text("k")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    link = ws / "escape-link"
    if not link.exists():
        link.symlink_to(outside)
    await put_perms(client, auth, "guarded", allowed_paths=[str(ws)], denied_paths=["secret/**", "/etc/**"])
    result = await run_tool(edge, "guarded", "file_read", path="secret/key.txt")
    assert not result.ok and "denied" in (result.error or "")
    result = await run_tool(edge, "guarded", "file_read", path="escape-link")
    assert not result.ok and "outside" in (result.error or "")
    result = await run_tool(edge, "guarded", "file_read", path="../../../../etc/passwd")
    assert not result.ok and "denied" in (result.error or "")
    result = await run_tool(edge, "guarded", "file_read", path=str(outside))
    assert not result.ok


async def test_shell_limits_timeout_memory_output_and_env(client, auth, edge, no_approvals):
    await put_perms(client, auth, "sheller", max_execution_time_secs=1, max_memory_mb=64)
    ok = await run_tool(edge, "sheller", "shell_exec", command="echo hi; env")
    assert ok.ok and "hi" in ok.output and "exit code 0" in ok.output
    assert "OXIOS_API_KEY" not in ok.output and "OXIOS_AGENT=sheller" in ok.output
    slow = await run_tool(edge, "sheller", "shell_exec", command="sleep 10")
    assert not slow.ok and "timed out" in (slow.error or "")
    hog = await run_tool(edge, "sheller", "shell_exec",
                         command=f"{sys.executable} -c 'x = bytearray(300 * 1024 * 1024)'")
    assert not hog.ok and hog.meta["exit_code"] != 0
    await set_config(client, auth, edge, {"exec": {"max_output_bytes": 100}})
    try:
        big = await run_tool(edge, "sheller", "shell_exec", command="yes | head -c 100000")
        assert big.meta["truncated"] and "truncated" in big.output
    finally:
        await set_config(client, auth, edge, {"exec": {"max_output_bytes": 1048576}})


async def test_network_needs_permission(client, auth, edge, no_approvals):
    from aiohttp import web
    app = web.Application()
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="fetched")

    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await put_perms(client, auth, "fetcher", allowed_tools=["http_fetch"])
        denied = await run_tool(edge, "fetcher", "http_fetch", url=f"http://127.0.0.1:{port}/")
        assert not denied.ok and "network" in (denied.error or "")
        await put_perms(client, auth, "fetcher", network_access=True)
        got = await run_tool(edge, "fetcher", "http_fetch", url=f"http://127.0.0.1:{port}/")
        assert got.ok and got.output == "fetched"
    finally:
        await runner.cleanup()


# -- approvals ---------------------------------------------------------------------
async def pending_for(client, auth, action: str, timeout: float = 10) -> dict[str, Any]:
    for _ in range(int(timeout * 20)):
        items = await (await client.get("/api/approvals", headers=auth)).json()
        found = [a for a in items if a["status"] == "pending" and a["action"] == action]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no pending approval for {action}")


async def test_shell_exec_waits_for_approval_then_runs(client, auth, edge):
    await put_perms(client, auth, "approver")
    task = asyncio.create_task(run_tool(edge, "approver", "shell_exec", command="echo approved-run"))
    req = await pending_for(client, auth, "use_tool:shell_exec")
    assert req["subject"] == "agent:approver" and set(req) >= {"id", "resource", "reason", "created_at"}
    assert not task.done()
    r = await client.post(f"/api/approvals/{req['id']}/approve", headers=auth)
    assert r.status == 200 and await r.json() == {"status": "approved", "id": req["id"]}
    result = await asyncio.wait_for(task, 20)
    assert result.ok and "approved-run" in result.output
    r = await client.post(f"/api/approvals/{req['id']}/approve", headers=auth)
    assert r.status == 404  # no longer pending
    types = [unpack(raw)["type"] for _, raw in event_log.read_after(edge.store, 0)]
    assert "approval_requested" in types and "approval_resolved" in types


async def test_rejection_fails_the_step_with_a_reason(client, auth, edge):
    await put_perms(client, auth, "rejected-agent")
    task = asyncio.create_task(run_tool(edge, "rejected-agent", "shell_exec", command="echo never"))
    req = await pending_for(client, auth, "use_tool:shell_exec")
    r = await client.post(f"/api/approvals/{req['id']}/reject", headers=auth)
    assert await r.json() == {"status": "rejected", "id": req["id"]}
    result = await asyncio.wait_for(task, 20)
    assert not result.ok and "approval rejected" in (result.error or "")


async def test_write_outside_allowed_paths_needs_approval(client, auth, edge, home, tmp_path):
    target = tmp_path / "outside-write.txt"
    await put_perms(client, auth, "outsider")
    task = asyncio.create_task(run_tool(edge, "outsider", "file_write", path=str(target), content="x"))
    req = await pending_for(client, auth, f"access_path:{target}")
    assert not target.exists()
    await client.post(f"/api/approvals/{req['id']}/approve", headers=auth)
    assert (await asyncio.wait_for(task, 20)).ok and target.read_text() == "x"


async def test_approval_expires(client, auth, edge):
    await set_config(client, auth, edge, {"approvals": {"timeout_secs": 1}})
    try:
        await put_perms(client, auth, "slowpoke")
        result = await run_tool(edge, "slowpoke", "shell_exec", command="echo late")
        assert not result.ok and "expired" in (result.error or "")
        items = await (await client.get("/api/approvals", headers=auth)).json()
        assert any(a["status"] == "expired" and a["subject"] == "agent:slowpoke" for a in items)
    finally:
        await set_config(client, auth, edge, {"approvals": {"timeout_secs": 3600}})


async def test_approve_reject_bad_and_unknown_ids(client, auth):
    r = await client.post("/api/approvals/not-a-uuid/approve", headers=auth)
    assert r.status == 400 and "UUID" in (await r.json())["error"]
    r = await client.post("/api/approvals/550e8400-e29b-41d4-a716-446655440000/reject", headers=auth)
    assert r.status == 404


async def test_pending_approval_survives_restart_and_dead_agent(client, auth, edge):
    await put_perms(client, auth, "survivor")
    task = asyncio.create_task(run_tool(edge, "survivor", "shell_exec", command="echo after-restart"))
    req = await pending_for(client, auth, "use_tool:shell_exec")
    pong = await edge.bridge.ask("approvals", Ping())
    os.kill(pong.pid, signal.SIGKILL)
    for _ in range(100):  # wait for the restarted service
        try:
            if (await edge.bridge.ask("approvals", Ping(), timeout=1)).pid != pong.pid:
                break
        except Exception:
            pass
        await asyncio.sleep(0.1)
    still = await pending_for(client, auth, "use_tool:shell_exec")
    assert still["id"] == req["id"]
    r = await client.post(f"/api/approvals/{req['id']}/approve", headers=auth)
    assert r.status == 200
    result = await asyncio.wait_for(task, 20)  # the waiting step resumed across the restart
    assert result.ok and "after-restart" in result.output

    # the waiting actor dies: resolving is still clean
    task = asyncio.create_task(run_tool(edge, "survivor", "shell_exec", command="echo orphan"))
    req = await pending_for(client, auth, "use_tool:shell_exec")
    tools_addr = edge.bridge.directory["tools"]
    tools = await edge.bridge.ask("tools", Ping())
    os.kill(tools.pid, signal.SIGKILL)
    r = await client.post(f"/api/approvals/{req['id']}/reject", headers=auth)
    assert r.status == 200
    task.cancel()
    for _ in range(100):  # the kernel restarts the tool host; the edge hears of its new address
        if edge.bridge.directory["tools"] != tools_addr:
            break
        await asyncio.sleep(0.05)
    assert isinstance(await edge.bridge.ask("tools", Ping(), timeout=5), type(tools))
    items = await (await client.get("/api/approvals", headers=auth)).json()
    assert [a["status"] for a in items if a["id"] == req["id"]] == ["rejected"]


# -- audit -----------------------------------------------------------------------------
async def test_audit_endpoints(client, auth, edge):
    await put_perms(client, auth, "audited")
    await run_tool(edge, "audited", "list_dir", path=".")
    r = await client.post("/api/audit/flush", headers=auth)
    flushed = (await r.json())["flushed"]
    assert flushed >= 1
    body = await (await client.get("/api/audit/entries?from_seq=0&to_seq=50", headers=auth)).json()
    assert body["count"] == len(body["entries"]) and body["entries"][0]["seq"] == 1
    assert body["entries"][0]["prev_hash"] == "sha256:" + "0" * 64
    assert set(body["entries"][0]) >= {"seq", "timestamp", "agent_name", "action", "resource", "allowed",
                                       "hash", "prev_hash"}
    r = await client.get("/api/audit/entries?from_seq=5&to_seq=2", headers=auth)
    assert r.status == 400
    r = await client.get("/api/audit/entries?from_seq=x", headers=auth)
    assert r.status == 400
    mine = await (await client.get("/api/audit/agent/audited", headers=auth)).json()
    assert mine["count"] >= 1 and all(e["agent_name"] == "audited" for e in mine["entries"])
    legacy = await (await client.get("/api/audit?page=1&limit=5", headers=auth)).json()
    assert legacy["page"] == 1 and legacy["limit"] == 5 and legacy["total"] >= flushed
    assert set(legacy["items"][0]) == {"timestamp", "agent_name", "action", "resource", "allowed", "reason"}
    v = await (await client.get("/api/audit/verify", headers=auth)).json()
    assert v == {"valid": True, "entry_count": v["entry_count"]} and v["entry_count"] >= flushed
    r = await client.post("/api/audit/export", json={"from_seq": "x"}, headers=auth)
    assert r.status == 400


async def test_config_change_and_failed_auth_are_audited(client, auth, edge):
    await set_config(client, auth, edge, {"budget": {"default_window_secs": 3601}})
    await client.get("/api/status", headers={"Authorization": "Bearer wrong-token-value"})
    await asyncio.sleep(0.3)
    await client.post("/api/audit/flush", headers=auth)
    entries = chain.newest_first(edge.store, 0, 50)
    actions = {e["action"] for e in entries}
    assert {"config_change", "auth_failed"} <= actions
    failed = [e for e in entries if e["action"] == "auth_failed"][0]
    assert failed["allowed"] is False and "wrong-token-value" not in json.dumps(failed)


async def test_export_reverifies_with_the_standalone_script(client, auth, tmp_path):
    body = await (await client.post("/api/audit/export", json={"from_seq": 0}, headers=auth)).json()
    assert body["entry_count"] == len(json.loads(body["json"])) > 0
    path = tmp_path / "export.json"
    path.write_text(json.dumps(body))
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify_audit.py"), str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "OK" in out.stdout
    entries = json.loads(body["json"])
    entries[2]["resource"] = "tampered"
    path.write_text(json.dumps(entries))
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify_audit.py"), str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 1 and f"seq {entries[2]['seq']}" in out.stdout


TAMPER = r"""
import sys, lmdb, msgpack
path, seq, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
env = lmdb.open(path, max_dbs=32, map_size=1 << 36)
db = env.open_db(b"chain")
key = seq.to_bytes(8, "big")
with env.begin(write=True, db=db) as txn:
    if mode == "edit":
        entry = msgpack.unpackb(txn.get(key), raw=False)
        sys.stdout.buffer.write(txn.get(key))
        entry["resource"] = "/tampered"
        txn.put(key, msgpack.packb(entry, use_bin_type=True))
    elif mode == "delete":
        sys.stdout.buffer.write(txn.get(key))
        txn.delete(key)
    else:
        txn.put(key, sys.stdin.buffer.read())
"""


def tamper(home: Path, seq: int, mode: str, data: bytes = b"") -> bytes:
    out = subprocess.run([sys.executable, "-c", TAMPER, str(home / "state" / "audit"), str(seq), mode],
                         input=data, capture_output=True, check=True)
    return out.stdout


async def test_tampering_and_deletion_are_detected(client, auth, home):
    await client.post("/api/audit/flush", headers=auth)
    original = tamper(home, 3, "edit")
    try:
        v = await (await client.get("/api/audit/verify", headers=auth)).json()
        stored = unpack(original)
        assert v["valid"] is False and v["broken_at_seq"] == 3
        assert v["found"] == stored["hash"] and v["expected"] != stored["hash"]
        assert v["expected"] == chain.entry_hash({**stored, "resource": "/tampered"})
    finally:
        tamper(home, 3, "restore", original)
    assert (await (await client.get("/api/audit/verify", headers=auth)).json())["valid"] is True
    original = tamper(home, 4, "delete")
    try:
        v = await (await client.get("/api/audit/verify", headers=auth)).json()
        assert v["valid"] is False and v["broken_at_seq"] == 4
    finally:
        tamper(home, 4, "restore", original)
    assert (await (await client.get("/api/audit/verify", headers=auth)).json())["valid"] is True


async def test_agent_writes_are_committed_and_memory_tools_work(client, auth, edge, home):
    import pygit2

    await put_perms(client, auth, "committer")
    result = await run_tool(edge, "committer", "file_write", path="notes/committed.md", content="v1")
    assert result.ok
    repo = pygit2.Repository(str(home / "workspace"))
    for _ in range(100):
        head = repo[repo.head.target]
        if head.author.name == "committer":
            break
        await asyncio.sleep(0.05)
    assert head.author.name == "committer" and "notes/committed.md" in head.message
    stored = await run_tool(edge, "committer", "memory_store", content="The deploy key rotates every Monday",
                            memory_type="fact", tags=["ops"])
    assert stored.ok and stored.meta["id"]
    found = await run_tool(edge, "committer", "memory_search", query="when does the deploy key rotate")
    assert found.ok and "deploy key rotates" in found.output


async def test_spawning_sub_agents_needs_can_fork(client, auth, edge):
    await put_perms(client, auth, "parent-agent", allowed_tools=["spawn_agent"])
    denied = await run_tool(edge, "parent-agent", "spawn_agent", goal="Write a sub-plan")
    assert not denied.ok and "can_fork" in (denied.error or "")
    await put_perms(client, auth, "parent-agent", can_fork=True)
    spawned = await run_tool(edge, "parent-agent", "spawn_agent", goal="Write a sub-plan")
    assert spawned.ok and spawned.meta["agent_id"].startswith("agent-")
