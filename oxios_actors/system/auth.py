"""Access tokens: key layout of registered tokens and the check the edge runs.

Environment ``auth``: db ``tokens`` maps the hex SHA-256 of a token to
``{"label", "created_at"}``.  The plaintext is never stored there; the key
generated at first start is also written to ``$OXIOS_HOME/api_key`` (mode 0600)
so its owner can read it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from ..store import ReadOnlyStore

DOMAIN = "auth"
TOKENS_DB = "tokens"
KEY_FILE = "api_key"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def key_file(home: str | os.PathLike[str]) -> Path:
    return Path(home) / KEY_FILE


def is_registered(store: ReadOnlyStore, token: str) -> bool:
    return store.get(DOMAIN, TOKENS_DB, token_hash(token).encode()) is not None


def check_token(store: ReadOnlyStore, token: str, env_key: str, static_key: str) -> bool:
    """Registered tokens first, then ``OXIOS_API_KEY``, then the config's static key.
    Each plaintext comparison is constant-time."""
    if not token:
        return False
    if is_registered(store, token):
        return True
    ok = False
    for candidate in (env_key, static_key):
        if candidate:
            ok |= hmac.compare_digest(token.encode(), candidate.encode())
    return ok
