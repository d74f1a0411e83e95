"""The audit chain: hashing, key layout and reads shared by the AuditLedger and the edge.

Entry: ``{seq, timestamp, agent_name, action, resource, allowed, reason, prev_hash, hash}``.
``hash = "sha256:" + hex(SHA-256(canonical JSON of the entry without "hash"))`` where
canonical JSON is ``json.dumps(entry, sort_keys=True, separators=(",", ":"),
ensure_ascii=False).encode("utf-8")``; the first entry (seq 1) has
``prev_hash = "sha256:" + "0" * 64``.  ``scripts/verify_audit.py`` re-checks an export
with nothing but the standard library.

Environment ``audit``: db ``chain`` maps ``seq_key(seq)`` to the msgpack entry;
db ``by_agent`` maps ``agent_name + b"\\0" + seq_key(seq)`` to ``b""``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from ..store import ReadOnlyStore, key_seq, seq_key, unpack

DOMAIN = "audit"
CHAIN_DB = "chain"
AGENT_DB = "by_agent"
GENESIS = "sha256:" + "0" * 64
FIELDS = ("seq", "timestamp", "agent_name", "action", "resource", "allowed", "reason", "prev_hash")


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: entry.get(k) for k in FIELDS}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def agent_key(agent_name: str, seq: int) -> bytes:
    return agent_name.encode() + b"\0" + seq_key(seq)


def verify_entries(entries: Iterable[dict[str, Any]], anchor: str | None = GENESIS,
                   first_seq: int | None = 1) -> dict[str, Any]:
    """Walk entries in seq order: each must hash to its ``hash``, link to the previous
    ``hash`` and follow it without a gap.  ``anchor``/``first_seq`` None = start anywhere."""
    count = 0
    broken: dict[str, Any] | None = None
    prev_hash, expect_seq = anchor, first_seq
    for entry in entries:
        count += 1
        if broken is not None:
            continue  # keep counting: entry_count is the size of the whole trail
        seq = entry.get("seq")
        computed = entry_hash(entry)
        if expect_seq is not None and seq != expect_seq:
            broken = {"broken_at_seq": expect_seq, "expected": f"entry with seq {expect_seq}",
                      "found": f"entry with seq {seq}"}
        elif prev_hash is not None and entry.get("prev_hash") != prev_hash:
            broken = {"broken_at_seq": seq, "expected": prev_hash, "found": entry.get("prev_hash")}
        elif entry.get("hash") != computed:
            broken = {"broken_at_seq": seq, "expected": computed, "found": entry.get("hash")}
        prev_hash = entry.get("hash")
        expect_seq = seq + 1 if isinstance(seq, int) else None
    if broken is not None:
        return {"valid": False, "entry_count": count, **broken}
    return {"valid": True, "entry_count": count}


def _iter(store: ReadOnlyStore, start: int, stop: int | None) -> Iterator[dict[str, Any]]:
    found = store.db(DOMAIN, CHAIN_DB)
    if found is None:
        return
    env, db = found
    with env.begin(db=db) as txn:
        cursor = txn.cursor()
        if not cursor.set_range(seq_key(max(start, 0))):
            return
        for key, raw in cursor.iternext():
            if stop is not None and key_seq(key) > stop:
                break
            yield unpack(raw)


def read_range(store: ReadOnlyStore, from_seq: int, to_seq: int) -> list[dict[str, Any]]:
    return list(_iter(store, from_seq, to_seq))


def read_from(store: ReadOnlyStore, from_seq: int) -> list[dict[str, Any]]:
    return list(_iter(store, from_seq, None))


def count(store: ReadOnlyStore) -> int:
    return store.count(DOMAIN, CHAIN_DB)


def newest_first(store: ReadOnlyStore, offset: int, limit: int) -> list[dict[str, Any]]:
    out = []
    for i, (_, entry) in enumerate(store.items(DOMAIN, CHAIN_DB, reverse=True)):
        if i >= offset + limit:
            break
        if i >= offset:
            out.append(entry)
    return out


def for_agent(store: ReadOnlyStore, agent_name: str, limit: int = 10_000) -> list[dict[str, Any]]:
    index = store.db(DOMAIN, AGENT_DB)
    chain = store.db(DOMAIN, CHAIN_DB)
    if index is None or chain is None:
        return []
    env, idx = index
    prefix = agent_name.encode() + b"\0"
    out = []
    with env.begin() as txn:
        cursor = txn.cursor(db=idx)
        if cursor.set_range(prefix):
            for key, _ in cursor.iternext():
                if not bytes(key).startswith(prefix):
                    break
                raw = txn.get(bytes(key)[len(prefix):], db=chain[1])
                if raw is not None:
                    out.append(unpack(raw))
                if len(out) >= limit:
                    break
    return out
