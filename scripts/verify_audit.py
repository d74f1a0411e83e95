#!/usr/bin/env python3
"""Verify an Oxios audit export with nothing but the standard library.

Usage:  curl -s -X POST -H "Authorization: Bearer $KEY" -d '{"from_seq": 0}' \
             http://127.0.0.1:4200/api/audit/export > export.json
        python3 scripts/verify_audit.py export.json

Each entry's hash is "sha256:" + hex SHA-256 of the canonical JSON of the entry without
"hash" (keys sorted, separators "," and ":", UTF-8); each prev_hash is the previous
entry's hash, and the first entry (seq 1) links to "sha256:" + 64 zeros.
"""

import hashlib
import json
import sys

GENESIS = "sha256:" + "0" * 64


def main(path: str) -> int:
    data = json.load(open(path, encoding="utf-8"))
    entries = json.loads(data["json"]) if isinstance(data, dict) else data
    prev = GENESIS if entries and entries[0]["seq"] == 1 else (entries[0]["prev_hash"] if entries else None)
    for i, entry in enumerate(entries):
        body = {k: v for k, v in entry.items() if k != "hash"}
        digest = "sha256:" + hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).hexdigest()
        if i and entry["seq"] != entries[i - 1]["seq"] + 1:
            print(f"BROKEN at seq {entries[i - 1]['seq'] + 1}: entry missing")
            return 1
        if entry["prev_hash"] != prev:
            print(f"BROKEN at seq {entry['seq']}: prev_hash {entry['prev_hash']} != {prev}")
            return 1
        if entry["hash"] != digest:
            print(f"BROKEN at seq {entry['seq']}: hash {entry['hash']} != {digest}")
            return 1
        prev = entry["hash"]
    print(f"OK: {len(entries)} entries verified")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
