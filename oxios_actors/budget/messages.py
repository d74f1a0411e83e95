"""Messages of the budget domain (the BudgetLedger's API).

Requests (reply type after the arrow; errors are ``Failure(status, error)``)::

    SetBudget(agent_id, token_budget, calls_budget, window_secs) -> BudgetSet
    GetBudget(agent_id)                                          -> BudgetStatus   (404 unknown)
    ResetBudget(agent_id)                                        -> BudgetReset    (404 unknown)
    RemoveBudget(agent_id)                                       -> BudgetRemoved  (404 unknown)
    Reserve(agent_id, tokens, calls, require_budget)             -> Reserved
    Record(agent_id, reserved_tokens, actual_tokens, window_start) -> Recorded (asks only)

An agent with no budget is *unlimited* for ``Reserve`` (``Reserved`` with
``limited=False`` and ``None`` remainders) unless ``require_budget`` is set,
which the HTTP reserve endpoint does (404 "No budget configured for agent ...").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SetBudget:
    """Set (or replace) an agent's limits; starts a fresh window.  ``window_secs``
    None -> ``budget.default_window_secs``."""

    agent_id: str
    token_budget: int
    calls_budget: int
    window_secs: int | None = None


@dataclass(frozen=True)
class BudgetSet:
    agent_id: str


@dataclass(frozen=True)
class GetBudget:
    agent_id: str


@dataclass(frozen=True)
class BudgetStatus:
    agent_id: str
    tokens_remaining: int
    calls_remaining: int
    window_remaining_secs: int
    is_exhausted: bool


@dataclass(frozen=True)
class ResetBudget:
    """Restore the full allocation and start a fresh window now."""

    agent_id: str


@dataclass(frozen=True)
class BudgetReset:
    agent_id: str


@dataclass(frozen=True)
class RemoveBudget:
    agent_id: str


@dataclass(frozen=True)
class BudgetRemoved:
    agent_id: str


@dataclass(frozen=True)
class Reserve:
    """Take ``tokens`` and ``calls`` from the current window before an LLM call.

    All or nothing: a reservation beyond what remains spends nothing and fails
    with 500 "Token budget exceeded: requested N but only M remaining" (or the
    same for calls).  Agents call this before every LLM call with their estimate
    and settle with ``Record`` afterwards.
    """

    agent_id: str
    tokens: int
    calls: int = 1
    require_budget: bool = False


@dataclass(frozen=True)
class Reserved:
    """``limited`` False: the agent has no budget (remainders are None).
    ``window_start`` identifies the window the reservation was taken from
    (pass it to ``Record``)."""

    ok: bool
    tokens_remaining: int | None
    calls_remaining: int | None
    limited: bool = True
    window_start: float | None = None


@dataclass(frozen=True)
class Record:
    """Settle a reservation with the tokens actually used: the difference is
    refunded or charged (the remainder never goes below zero nor above the
    budget).  When ``window_start`` names a window that has since ended, only an
    extra charge applies (to the current window); there is nothing to refund."""

    agent_id: str
    reserved_tokens: int
    actual_tokens: int
    window_start: float | None = None


@dataclass(frozen=True)
class Recorded:
    tokens_remaining: int | None
    calls_remaining: int | None
