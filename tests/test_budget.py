"""§17 Budget: every endpoint and error against the real actor system (including
a SIGKILL of the ledger), the agents' internal API on simpleSystemBase."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from thespian.actors import ActorSystem

from http_edge.errors import ApiError
from oxios_actors.budget import records
from oxios_actors.budget.messages import (
    BudgetRemoved,
    BudgetReset,
    BudgetSet,
    BudgetStatus,
    GetBudget,
    Record,
    Recorded,
    RemoveBudget,
    Reserve,
    Reserved,
    ResetBudget,
    SetBudget,
)
from oxios_actors.messages import Answer, Ask, Configure, Failure, Ping, Pong

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "api-reference.md"


# ------------------------------------------------------------- window arithmetic
def test_window_tumbles_at_the_next_access():
    rec = records.new_record("a", 100, 10, 60, now=1000.0)
    rec = {**rec, "tokens_used": 40, "calls_used": 10}
    assert records.status(rec, 1030.0) == {"agent_id": "a", "tokens_remaining": 60, "calls_remaining": 0,
                                           "window_remaining_secs": 30, "is_exhausted": True}
    fresh = records.current(rec, 1075.0)
    assert (fresh["tokens_used"], fresh["calls_used"], fresh["window_start"]) == (0, 0, 1075.0)
    assert records.status(rec, 1075.0)["window_remaining_secs"] == 60  # the window an access starts
    assert records.exceeded(fresh, 101, 1) == "Token budget exceeded: requested 101 but only 100 remaining"
    assert records.exceeded(rec, 10, 1) == "Call budget exceeded: requested 1 but only 0 remaining"
    assert records.exceeded(fresh, 100, 1) is None


# ------------------------------------------------------- internal API (simple base)
@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    asys = ActorSystem("simpleSystemBase", transientUnique=True)
    auditor = asys.createActor("tests.actors.Recorder")
    addr = asys.createActor("oxios_actors.budget.ledger.BudgetLedger")
    asys.ask(addr, Configure("budget", str(tmp_path), {"audit": auditor},
                             {"budget": {"default_window_secs": 3600}}), 10)

    def ask(msg: Any) -> Any:
        reply = asys.ask(addr, Ask("r", msg), 10)
        assert isinstance(reply, Answer), reply
        return reply.reply

    yield ask, (asys, addr, auditor)
    asys.shutdown()


def test_agents_without_a_budget_are_unlimited_internally(ledger):
    ask, _ = ledger
    assert ask(Reserve("free-agent", 10**9)) == Reserved(True, None, None, limited=False)
    assert ask(Record("free-agent", 10, 20)) == Recorded(None, None)
    strict = ask(Reserve("free-agent", 10, require_budget=True))
    assert strict == Failure(404, "No budget configured for agent free-agent")


def test_record_settles_actual_usage_within_bounds(ledger):
    ask, _ = ledger
    assert ask(SetBudget("a1", 1000, 10)) == BudgetSet("a1")  # window from budget.default_window_secs
    got = ask(Reserve("a1", 300))
    assert (got.ok, got.tokens_remaining, got.calls_remaining, got.limited) == (True, 700, 9, True)
    assert ask(Record("a1", 300, 100, got.window_start)) == Recorded(900, 9)  # 200 refunded
    assert ask(Record("a1", 100, 5000, got.window_start)) == Recorded(0, 9)  # charged, never below zero
    assert ask(Record("a1", 5000, 0, got.window_start)) == Recorded(1000, 9)  # never above the budget
    status = ask(GetBudget("a1"))
    assert isinstance(status, BudgetStatus) and status.window_remaining_secs == 3600
    assert isinstance(ask(Record("a1", -1, 0)), Failure)


def test_record_for_an_ended_window_only_charges(ledger):
    ask, _ = ledger
    ask(SetBudget("a2", 1000, 10, 1))
    got = ask(Reserve("a2", 500))
    time.sleep(1.1)  # the reservation's window ends
    assert ask(Record("a2", 500, 100, got.window_start)) == Recorded(1000, 10)  # fresh window: no refund
    assert ask(Record("a2", 100, 300, got.window_start)) == Recorded(800, 10)  # the extra is charged


def test_plain_record_tells_get_no_reply(ledger):
    ask, (asys, addr, _) = ledger
    ask(SetBudget("a3", 100, 10, 60))
    asys.tell(addr, Record("a3", 0, 30))
    assert asys.listen(0.3) is None
    assert ask(GetBudget("a3")).tokens_remaining == 70


def test_changes_and_refusals_are_audited(ledger):
    ask, (asys, _, auditor) = ledger
    ask(SetBudget("a4", 100, 10, 60))
    assert isinstance(ask(Reserve("a4", 500)), Failure)
    assert ask(ResetBudget("a4")) == BudgetReset("a4")
    assert ask(RemoveBudget("a4")) == BudgetRemoved("a4")
    assert ask(RemoveBudget("a4")) == Failure(404, "No budget configured for agent a4")
    audited = [r for m in asys.ask(auditor, "recorded", 10) for r in m.records]
    assert [(r.agent_name, r.action, r.allowed) for r in audited] == [
        ("a4", "budget_set", True), ("a4", "budget_reserve_denied", False),
        ("a4", "budget_reset", True), ("a4", "budget_removed", True)]
    assert audited[1].reason == "Token budget exceeded: requested 500 but only 100 remaining"


# ------------------------------------------------------------- HTTP (real runtime)
async def get(client: Any, auth: dict[str, str], agent: str) -> tuple[int, Any]:
    r = await client.get(f"/api/budget/{agent}", headers=auth)
    return r.status, await r.json()


async def post(client: Any, auth: dict[str, str], path: str, body: Any = None) -> tuple[int, Any]:
    r = await client.post(path, headers=auth, **({"json": body} if body is not None else {}))
    return r.status, await r.json()


def spec_examples() -> list[str]:
    if not SPEC.exists():
        pytest.skip(f"contract not found at {SPEC}")
    text = SPEC.read_text()
    section = text[text.index("## 17. Budget"):text.index("## 18. Resources")]
    return [m.strip() for m in re.findall(r"\*\*Example:\*\*\n```sh\n(.*?)```", section, re.S)]


async def run_curl(command: str, port: int, token: str) -> tuple[int, Any]:
    command = command.replace("http://127.0.0.1:4200", f"http://127.0.0.1:{port}")
    command = command.replace("YOUR_TOKEN", token) + " -s -w '\\n%{http_code}'"
    proc = await asyncio.create_subprocess_exec("bash", "-c", command, stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    body, _, status = out.decode().rpartition("\n")
    return int(status), json.loads(body)


async def test_contract_curl_examples_in_order(client, token):
    examples = spec_examples()
    assert len(examples) == 5 and all("builder-agent" in e for e in examples)
    by_kind = {("reserve" if "/reserve" in e else "reset" if "/reset" in e else
                "delete" if "DELETE" in e else "set" if "POST" in e else "get"): e for e in examples}
    port = client.server.port
    assert await run_curl(by_kind["set"], port, token) == (200, {"set": True, "agent_id": "builder-agent"})
    status, body = await run_curl(by_kind["get"], port, token)
    assert status == 200 and body == {"agent_id": "builder-agent", "tokens_remaining": 50000,
                                      "calls_remaining": 100, "window_remaining_secs": body[
                                          "window_remaining_secs"], "is_exhausted": False}
    assert 3595 <= body["window_remaining_secs"] <= 3600
    assert await run_curl(by_kind["reserve"], port, token) == (200, {"reserved": True})
    status, body = await run_curl(by_kind["get"], port, token)
    assert (body["tokens_remaining"], body["calls_remaining"]) == (45000, 99)  # N tokens and one call
    assert await run_curl(by_kind["reset"], port, token) == (200, {"reset": True, "agent_id": "builder-agent"})
    status, body = await run_curl(by_kind["get"], port, token)
    assert (body["tokens_remaining"], body["calls_remaining"]) == (50000, 100)
    assert await run_curl(by_kind["delete"], port, token) == (200, {"removed": True, "agent_id": "builder-agent"})
    assert await run_curl(by_kind["get"], port, token) == (
        404, {"error": "No budget configured for agent builder-agent"})


async def test_set_validates_every_field(client, auth):
    good = {"token_budget": 10, "calls_budget": 2, "window_secs": 60}
    for field in good:
        for bad in (0, -5, True, 1.5, "10", None):
            status, body = await post(client, auth, "/api/budget/v1", {**good, field: bad})
            assert status == 400 and body == {"error": f"{field} must be a positive integer"}, (field, bad)
        missing = {k: v for k, v in good.items() if k != field}
        assert await post(client, auth, "/api/budget/v1", missing) == (400, {"error": f"{field} is required"})
    r = await client.post("/api/budget/v1", data="{not json", headers=auth)
    assert r.status == 400 and "error" in await r.json()
    assert (await post(client, auth, "/api/budget/v1", [1, 2]))[0] == 400
    assert (await get(client, auth, "v1"))[0] == 404  # nothing was set
    assert (await client.post("/api/budget/v1", json=good)).status == 401


async def test_reserve_errors_spend_nothing(client, auth):
    assert (await post(client, auth, "/api/budget/r1", {"token_budget": 1000, "calls_budget": 5,
                                                       "window_secs": 3600}))[0] == 200
    for bad in ({}, {"tokens": 0}, {"tokens": -1}, {"tokens": True}, {"tokens": 2.5}, {"tokens": "5"}):
        status, body = await post(client, auth, "/api/budget/r1/reserve", bad)
        assert status == 400 and "tokens" in body["error"], bad
    assert await post(client, auth, "/api/budget/r1/reserve", {"tokens": 400}) == (200, {"reserved": True})
    before = await get(client, auth, "r1")
    status, body = await post(client, auth, "/api/budget/r1/reserve", {"tokens": 601})
    assert status == 500
    assert body == {"error": "Token budget exceeded: requested 601 but only 600 remaining"}
    assert await get(client, auth, "r1") == before  # neither tokens nor a call were spent
    assert before[1]["tokens_remaining"] == 600 and before[1]["calls_remaining"] == 4


async def test_unknown_agents_are_404(client, auth):
    msg = {"error": "No budget configured for agent ghost"}
    assert await get(client, auth, "ghost") == (404, msg)
    assert await post(client, auth, "/api/budget/ghost/reserve", {"tokens": 5}) == (404, msg)
    assert await post(client, auth, "/api/budget/ghost/reset") == (404, msg)
    r = await client.delete("/api/budget/ghost", headers=auth)
    assert (r.status, await r.json()) == (404, msg)
    assert (await get(client, auth, "x" * 600))[0] == 400  # longer than an LMDB key


async def test_any_agent_id_string_works(client, auth):
    agent = "team/agent 7 ü"
    quoted = "team%2Fagent%207%20%C3%BC"
    status, body = await post(client, auth, f"/api/budget/{quoted}",
                              {"token_budget": 5, "calls_budget": 1, "window_secs": 9})
    assert (status, body) == (200, {"set": True, "agent_id": agent})
    assert (await get(client, auth, quoted))[1]["agent_id"] == agent
    assert (await client.delete(f"/api/budget/{quoted}", headers=auth)).status == 200


async def test_exhaustion_by_calls_and_by_tokens(client, auth):
    await post(client, auth, "/api/budget/e1", {"token_budget": 1000, "calls_budget": 2, "window_secs": 3600})
    for _ in range(2):
        assert (await post(client, auth, "/api/budget/e1/reserve", {"tokens": 1}))[0] == 200
    status, body = await get(client, auth, "e1")
    assert (body["tokens_remaining"], body["calls_remaining"], body["is_exhausted"]) == (998, 0, True)
    assert await post(client, auth, "/api/budget/e1/reserve", {"tokens": 1}) == (
        500, {"error": "Call budget exceeded: requested 1 but only 0 remaining"})
    await post(client, auth, "/api/budget/e2", {"token_budget": 100, "calls_budget": 50, "window_secs": 3600})
    assert (await post(client, auth, "/api/budget/e2/reserve", {"tokens": 100}))[0] == 200
    status, body = await get(client, auth, "e2")
    assert (body["tokens_remaining"], body["calls_remaining"], body["is_exhausted"]) == (0, 49, True)


async def test_window_expiry_restores_the_budget(client, auth):
    await post(client, auth, "/api/budget/w1", {"token_budget": 100, "calls_budget": 3, "window_secs": 1})
    assert (await post(client, auth, "/api/budget/w1/reserve", {"tokens": 100}))[0] == 200
    status, body = await get(client, auth, "w1")
    assert body["is_exhausted"] is True and body["window_remaining_secs"] <= 1
    assert (await post(client, auth, "/api/budget/w1/reserve", {"tokens": 1}))[0] == 500
    await asyncio.sleep(1.2)
    status, body = await get(client, auth, "w1")
    assert body == {"agent_id": "w1", "tokens_remaining": 100, "calls_remaining": 3,
                    "window_remaining_secs": 1, "is_exhausted": False}
    assert (await post(client, auth, "/api/budget/w1/reserve", {"tokens": 100}))[0] == 200  # a fresh window


async def test_budgets_survive_a_sigkilled_ledger(client, auth, edge):
    await post(client, auth, "/api/budget/k1", {"token_budget": 500, "calls_budget": 10, "window_secs": 3600})
    assert (await post(client, auth, "/api/budget/k1/reserve", {"tokens": 123}))[0] == 200
    before = await get(client, auth, "k1")
    old = await edge.bridge.ask("budget", Ping())
    os.kill(old.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        assert time.monotonic() < deadline, "budget ledger was not restarted"
        try:
            pong = await edge.bridge.ask("budget", Ping(), timeout=1.0)
            if isinstance(pong, Pong) and pong.pid != old.pid:
                break
        except ApiError:
            pass
        await asyncio.sleep(0.1)
    assert await get(client, auth, "k1") == before
    assert await post(client, auth, "/api/budget/k1/reserve", {"tokens": 378}) == (
        500, {"error": "Token budget exceeded: requested 378 but only 377 remaining"})
    status, body = await get(client, auth, "k1")
    assert (body["tokens_remaining"], body["calls_remaining"]) == (377, 9)
