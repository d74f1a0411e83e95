"""The budget domain: per-agent token and call budgets (§17).

``ledger.BudgetLedger`` is the service (``"budget"``); ``messages`` its API;
``records`` the LMDB layout, the window arithmetic and the reads shared with the edge.

How an agent uses it around every LLM call (plain tells between actors):

1. ``Reserve(agent_id, tokens=<estimate, e.g. prompt + max_tokens>, calls=1)``
   -> ``Reserved(ok=True, tokens_remaining, calls_remaining, limited,
   window_start)``, or ``Failure(500, "Token budget exceeded: ...")`` (nothing
   spent: do not call the model).  No budget configured -> unlimited
   (``limited=False``, remainders ``None``).
2. After the call: ``Record(agent_id, reserved_tokens, actual_tokens,
   window_start)`` refunds or charges the difference (no reply to a tell)."""

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

__all__ = [
    "BudgetRemoved", "BudgetReset", "BudgetSet", "BudgetStatus", "GetBudget", "Record", "Recorded",
    "RemoveBudget", "Reserve", "Reserved", "ResetBudget", "SetBudget",
]
