"""BudgetLedger: per-agent token and call budgets over tumbling windows (§17).

The only writer of the ``budget`` environment.  Every change is committed
(sync) before the reply, so an acknowledged reservation survives ``kill -9``
and a restarted ledger continues the same windows.  A successful reservation
consumes the requested tokens and one call (``Reserve.calls``); a failed one
spends nothing.  Setting, resetting and removing a budget, and every refused
reservation, are audited.

Agents use ``Reserve`` before every LLM call and ``Record`` after it (see
``messages``); agents without a budget are unlimited on that internal path.
"""

from __future__ import annotations

import time
from typing import Any

from ..messages import Failure, Ok
from ..service import ServiceActor
from ..store import open_writer, pack, unpack
from . import records as R
from .messages import (
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


class BudgetLedger(ServiceActor):
    name = "budget"

    def clock(self) -> float:
        """Wall-clock seconds (windows must survive restarts)."""
        return time.time()

    def on_configure(self) -> None:
        self.env = open_writer(self.home, R.DOMAIN)
        self.db = self.env.open_db(R.BUDGETS_DB.encode())
        self.reservations = 0
        self.refusals = 0

    # -- storage ------------------------------------------------------------
    def load(self, agent_id: str) -> dict[str, Any] | None:
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(agent_id.encode())
        return None if raw is None else unpack(raw)

    def save(self, rec: dict[str, Any]) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(rec["agent_id"].encode(), pack(rec))

    def unknown(self, agent_id: str) -> Failure:
        return Failure(404, f"No budget configured for agent {agent_id}")

    # -- handlers -----------------------------------------------------------
    def on_SetBudget(self, msg: SetBudget) -> Any:
        window = msg.window_secs
        if window is None:
            window = int(self.section("budget").get("default_window_secs", 3600))
        problem = R.check_agent_id(msg.agent_id) or R.check_limits(
            {"token_budget": msg.token_budget, "calls_budget": msg.calls_budget, "window_secs": window})
        if problem:
            return Failure(400, problem)
        self.save(R.new_record(msg.agent_id, msg.token_budget, msg.calls_budget, window, self.clock()))
        self.audit(msg.agent_id, "budget_set", f"budget:{msg.agent_id}", True,
                   f"token_budget={msg.token_budget} calls_budget={msg.calls_budget} "
                   f"window_secs={window}")
        return BudgetSet(msg.agent_id)

    def on_GetBudget(self, msg: GetBudget) -> Any:
        rec = self.load(msg.agent_id) if R.check_agent_id(msg.agent_id) is None else None
        if rec is None:
            return self.unknown(msg.agent_id)
        return BudgetStatus(**R.status(rec, self.clock()))

    def on_ResetBudget(self, msg: ResetBudget) -> Any:
        rec = self.load(msg.agent_id) if R.check_agent_id(msg.agent_id) is None else None
        if rec is None:
            return self.unknown(msg.agent_id)
        self.save({**rec, "tokens_used": 0, "calls_used": 0, "window_start": self.clock()})
        self.audit(msg.agent_id, "budget_reset", f"budget:{msg.agent_id}")
        return BudgetReset(msg.agent_id)

    def on_RemoveBudget(self, msg: RemoveBudget) -> Any:
        if R.check_agent_id(msg.agent_id) is not None:
            return self.unknown(msg.agent_id)
        with self.env.begin(write=True, db=self.db) as txn:
            removed = txn.delete(msg.agent_id.encode())
        if not removed:
            return self.unknown(msg.agent_id)
        self.audit(msg.agent_id, "budget_removed", f"budget:{msg.agent_id}")
        return BudgetRemoved(msg.agent_id)

    def on_Reserve(self, msg: Reserve) -> Any:
        if R.check_agent_id(msg.agent_id) is not None:
            return Failure(400, str(R.check_agent_id(msg.agent_id)))
        for name, value in (("tokens", msg.tokens), ("calls", msg.calls)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return Failure(400, f"{name} must be a non-negative integer")
        rec = self.load(msg.agent_id)
        if rec is None:
            if msg.require_budget:
                return self.unknown(msg.agent_id)
            return Reserved(True, None, None, limited=False)
        rec = R.current(rec, self.clock())
        problem = R.exceeded(rec, msg.tokens, msg.calls)
        if problem:
            self.refusals += 1
            self.save(rec)  # a window that rolled over is started even by a refusal
            self.audit(msg.agent_id, "budget_reserve_denied", f"budget:{msg.agent_id}", False, problem)
            return Failure(500, problem)
        rec = {**rec, "tokens_used": rec["tokens_used"] + msg.tokens,
               "calls_used": rec["calls_used"] + msg.calls}
        self.save(rec)
        self.reservations += 1
        tokens, calls = R.remaining(rec)
        return Reserved(True, tokens, calls, limited=True, window_start=rec["window_start"])

    def on_Record(self, msg: Record) -> Any:
        for name, value in (("reserved_tokens", msg.reserved_tokens), ("actual_tokens", msg.actual_tokens)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return self.answer(Failure(400, f"{name} must be a non-negative integer"))
        rec = self.load(msg.agent_id) if R.check_agent_id(msg.agent_id) is None else None
        if rec is None:
            return self.answer(Recorded(None, None))
        rec = R.current(rec, self.clock())
        delta = msg.actual_tokens - msg.reserved_tokens
        if msg.window_start is not None and msg.window_start != rec["window_start"]:
            delta = max(0, delta)  # the reservation's window is gone: nothing to refund
        used = min(rec["token_budget"], max(0, rec["tokens_used"] + delta))
        rec = {**rec, "tokens_used": used}
        self.save(rec)
        return self.answer(Recorded(*R.remaining(rec)))

    def answer(self, reply: Any) -> Any:
        """Reply to asks only: a plain ``Record`` tell from an agent gets no answer."""
        return reply if self.reply_to is not None and self.reply_to.rid is not None else None

    # Replies that may come back from actors we told: never answer them (no ping-pong).
    def on_Failure(self, msg: Failure) -> None:
        return None

    def on_Ok(self, msg: Ok) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"reservations": self.reservations, "refusals": self.refusals}

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.env.close()
