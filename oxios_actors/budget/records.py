"""Key layout, window arithmetic and reads of the budget domain, shared by the
BudgetLedger and the edge.

Environment ``budget``: db ``budgets`` maps ``agent_id`` (UTF-8) to the msgpack
record ``{agent_id, token_budget, calls_budget, window_secs, tokens_used,
calls_used, window_start}`` (``window_start``: wall-clock seconds, so windows
survive restarts).

Windows tumble: once ``window_secs`` have passed since ``window_start``, the
next access starts a fresh window *at that moment* with nothing used.  A read
shows the window an access would start (full allocation, ``window_secs`` left)
without writing; the ledger writes it on the next reservation.
"""

from __future__ import annotations

import math
import time
from typing import Any

from ..store import ReadOnlyStore

DOMAIN = "budget"
BUDGETS_DB = "budgets"
MAX_AGENT_ID_BYTES = 500  # LMDB keys are at most 511 bytes
LIMIT_FIELDS = ("token_budget", "calls_budget", "window_secs")


def is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_agent_id(agent_id: Any) -> str | None:
    """Why ``agent_id`` is unusable, or None."""
    if not isinstance(agent_id, str) or not agent_id:
        return "agent_id must be a non-empty string"
    if len(agent_id.encode()) > MAX_AGENT_ID_BYTES:
        return f"agent_id must be at most {MAX_AGENT_ID_BYTES} bytes"
    return None


def check_limits(values: dict[str, Any]) -> str | None:
    """Why a ``{token_budget, calls_budget, window_secs}`` body is invalid, or None."""
    for name in LIMIT_FIELDS:
        if name not in values:
            return f"{name} is required"
        if not is_positive_int(values[name]):
            return f"{name} must be a positive integer"
    return None


def new_record(agent_id: str, token_budget: int, calls_budget: int, window_secs: int,
               now: float) -> dict[str, Any]:
    return {"agent_id": agent_id, "token_budget": token_budget, "calls_budget": calls_budget,
            "window_secs": window_secs, "tokens_used": 0, "calls_used": 0, "window_start": now}


def current(rec: dict[str, Any], now: float) -> dict[str, Any]:
    """``rec`` as of ``now``: the same record, or a fresh window when it elapsed."""
    if now >= rec["window_start"] + rec["window_secs"]:
        return {**rec, "tokens_used": 0, "calls_used": 0, "window_start": now}
    return rec


def remaining(rec: dict[str, Any]) -> tuple[int, int]:
    return (max(0, rec["token_budget"] - rec["tokens_used"]),
            max(0, rec["calls_budget"] - rec["calls_used"]))


def status(rec: dict[str, Any], now: float) -> dict[str, Any]:
    """The contract's ``GET /api/budget/{agent_id}`` body."""
    rec = current(rec, now)
    tokens, calls = remaining(rec)
    left = rec["window_start"] + rec["window_secs"] - now
    return {"agent_id": rec["agent_id"], "tokens_remaining": tokens, "calls_remaining": calls,
            "window_remaining_secs": max(0, math.ceil(left)),
            "is_exhausted": tokens == 0 or calls == 0}


def exceeded(rec: dict[str, Any], tokens: int, calls: int) -> str | None:
    """Why a reservation of ``tokens``/``calls`` cannot be granted from ``rec``, or None."""
    tokens_left, calls_left = remaining(rec)
    if tokens > tokens_left or tokens_left == 0:
        return f"Token budget exceeded: requested {tokens} but only {tokens_left} remaining"
    if calls > calls_left or calls_left == 0:
        return f"Call budget exceeded: requested {calls} but only {calls_left} remaining"
    return None


def read(store: ReadOnlyStore, agent_id: str) -> dict[str, Any] | None:
    if check_agent_id(agent_id) is not None:
        return None
    return store.get(DOMAIN, BUDGETS_DB, agent_id.encode())


def read_status(store: ReadOnlyStore, agent_id: str, now: float | None = None) -> dict[str, Any] | None:
    rec = read(store, agent_id)
    return None if rec is None else status(rec, time.time() if now is None else now)
