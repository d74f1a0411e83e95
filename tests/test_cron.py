"""§13 Cron jobs that really fire (second-level schedules; no test sleeps for minutes)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from http_edge.app import close, connect
from oxios_actors.cron import records

from .conftest import start_runtime, track_pgid
from .scripted_llm import ScriptedModel


async def create(client, auth, **fields: Any) -> str:
    body = {"name": "job", "schedule": "0 0 0 1 1 *", "goal": "Write a status note for the team", **fields}
    r = await client.post("/api/cron-jobs", json=body, headers=auth)
    assert r.status == 200, await r.text()
    return (await r.json())["id"]


async def get(client, auth, job_id: str) -> dict[str, Any]:
    r = await client.get(f"/api/cron-jobs/{job_id}", headers=auth)
    assert r.status == 200
    return await r.json()


async def test_contract_examples_and_validation(client, auth):
    r = await client.post("/api/cron-jobs", json={"name": "daily-backup", "schedule": "0 0 * * * *",
                                                  "goal": "Create a backup of the workspace",
                                                  "constraints": ["Include all source files"]}, headers=auth)
    job_id = (await r.json())["id"]
    job = await get(client, auth, job_id)
    assert job["name"] == "daily-backup" and job["toolchain"] == "default" and job["priority"] == "Normal"
    assert job["enabled"] is True and job["run_count"] == 0 and job["last_run"] is None
    assert job["next_run"].endswith(":00:00+00:00")  # top of an hour, UTC
    listed = await (await client.get("/api/cron-jobs", headers=auth)).json()
    assert any(j["id"] == job_id for j in listed["jobs"])
    r = await client.post(f"/api/cron-jobs/{job_id}/edit", json={"schedule": "0 */6 * * * *"}, headers=auth)
    assert await r.json() == {"updated": job_id}
    assert (await get(client, auth, job_id))["schedule"] == "0 */6 * * * *"
    for bad in ({"schedule": "not cron"}, {"schedule": "0 0 0 31 2 *"}, {"priority": "Urgent"},
                {"schedule": "61 * * * * *"}, {"name": 5}, {"bogus": 1}):
        r = await client.post("/api/cron-jobs", json={"name": "x", "schedule": "* * * * * *", "goal": "g", **bad},
                              headers=auth)
        assert r.status == 400, bad
        r = await client.post(f"/api/cron-jobs/{job_id}/edit", json=bad, headers=auth)
        assert r.status == 400, bad
    five = await create(client, auth, schedule="30 2 * * *")  # minute-first, second 0
    assert (await get(client, auth, five))["next_run"].endswith("02:30:00+00:00")
    r = await client.delete(f"/api/cron-jobs/{job_id}", headers=auth)
    assert await r.json() == {"deleted": job_id}
    assert (await client.delete(f"/api/cron-jobs/{job_id}", headers=auth)).status == 404
    assert (await client.get(f"/api/cron-jobs/{job_id}", headers=auth)).status == 404
    assert (await client.post(f"/api/cron-jobs/{job_id}/trigger", headers=auth)).status == 404
    await client.delete(f"/api/cron-jobs/{five}", headers=auth)


async def test_trigger_runs_the_goal_through_the_orchestrator(client, auth, edge):
    job_id = await create(client, auth, acceptance_criteria=["Status note exists"], priority="High")
    r = await client.post(f"/api/cron-jobs/{job_id}/trigger", headers=auth)
    body = await r.json()
    assert r.status == 200 and body["job_id"] == job_id and isinstance(body["success"], bool)
    assert "Write a status note for the team" in body["summary"]
    job = await get(client, auth, job_id)
    assert job["run_count"] == 1 and job["last_run"] is not None and job["last_success"] == body["success"]
    sessions = await (await client.get("/api/sessions?limit=500", headers=auth)).json()
    assert any(s["id"] == f"cron-{job_id}" for s in sessions["items"])
    await client.delete(f"/api/cron-jobs/{job_id}", headers=auth)


async def test_job_fires_repeatedly_on_schedule(client, auth):
    job_id = await create(client, auth, schedule="* * * * * *")  # every second
    try:
        for _ in range(150):
            job = await get(client, auth, job_id)
            if job["run_count"] >= 3:
                break
            await asyncio.sleep(0.1)
        assert job["run_count"] >= 3 and job["last_success"] is not None
    finally:
        await client.delete(f"/api/cron-jobs/{job_id}", headers=auth)


async def test_overlapping_tick_is_skipped_not_run_twice(client, auth, edge):
    model = ScriptedModel()
    url = await model.start()
    r = await client.put("/api/config", json={"engine": {"provider": "openai", "base_url": url,
                                                         "default_model": "scripted", "max_retries": 0},
                                              "approvals": {"require": []}}, headers=auth)
    assert r.status == 200
    edge.limiter.per_minute = 10**9
    job_id = await create(client, auth, schedule="* * * * * *", goal="Slow job [script:shell sleep 3]")
    try:
        for _ in range(200):
            job = await get(client, auth, job_id)
            if job["skipped_runs"] >= 2 and job["run_count"] >= 1:
                break
            await asyncio.sleep(0.1)
        assert job["skipped_runs"] >= 2
        running = [r for r in model.requests if "Slow job" in json.dumps(r["messages"])]
        assert job["run_count"] == 1 or len(running) >= job["run_count"]
        r = await client.post(f"/api/cron-jobs/{job_id}/trigger", headers=auth)
        assert r.status in (200, 409)
    finally:
        await client.post(f"/api/cron-jobs/{job_id}/edit", json={"enabled": False}, headers=auth)
        await client.delete(f"/api/cron-jobs/{job_id}", headers=auth)
        await client.put("/api/config", json={
            "engine": {"provider": "offline", "base_url": "", "default_model": "", "max_retries": 3},
            "approvals": {"require": ["use_tool:shell_exec", "access_path:outside", "manage_programs",
                                      "system_config"]}}, headers=auth)
        edge.limiter.per_minute = 10**9
        await model.stop()


async def test_missed_ticks_run_once_after_restart_and_jobs_survive(tmp_path: Path):
    home = tmp_path / "cron-home"
    rt = start_runtime(home)
    edge = connect(home, rt.actor_port)
    loop = asyncio.get_running_loop()
    from oxios_actors.cron.service import CreateJob
    try:
        reply = await loop.run_in_executor(None, lambda: edge.bridge.ask_sync("cron", CreateJob({
            "name": "every-2s", "schedule": "*/2 * * * * *", "goal": "Write a heartbeat note"}), 10))
        job_id = reply["id"]
        for _ in range(100):
            job = records.get_job(edge.store, job_id)
            if job["run_count"] >= 1 and not job.get("running"):
                break
            await asyncio.sleep(0.1)
    finally:
        close(edge)
        rt.stop()
    before = json.loads(json.dumps(job))
    await asyncio.sleep(6.5)  # the system is down for at least three ticks
    rt2 = start_runtime(home)
    edge2 = connect(home, rt2.actor_port)
    try:
        await asyncio.sleep(0.5)
        job = records.get_job(edge2.store, job_id)
        assert job is not None and job["name"] == "every-2s"  # survived
        assert job["run_count"] == before["run_count"] + 1  # once at start-up, not once per missed tick
        assert job["last_run"] > before["last_run"]
    finally:
        close(edge2)
        rt2.stop()
        track_pgid(rt2.admin_pgid)


@pytest.mark.parametrize("expr,ok", [("* * * * * *", True), ("0 30 9 * * 1-5", True), ("*/5 * * * *", True),
                                     ("* * * *", False), ("0 0 0 30 2 *", False)])
def test_schedule_validation(expr, ok):
    try:
        records.validate({"name": "n", "schedule": expr, "goal": "g"}, partial=False)
        assert ok
    except records.CronError:
        assert not ok


def test_next_tick_is_utc_and_seconds_first():
    t = time.mktime((2026, 1, 1, 0, 0, 0, 0, 0, 0)) - time.timezone
    assert records.iso(records.next_after("15 * * * * *", t)) == "2026-01-01T00:00:15+00:00"
