"""ConfigService: the only writer of ``config.json`` and of registered tokens."""

from __future__ import annotations

import os
import secrets
from typing import Any

from ..messages import Ask, ConfigChanged, Failure
from ..service import DEFERRED, ServiceActor, rfc3339
from ..store import open_writer, pack
from . import auth
from . import config as schema
from .messages import ConfigUpdated, GetConfig, RegisterToken, TokenRegistered, UpdateConfig


class ConfigService(ServiceActor):
    name = "config"

    def on_configure(self) -> None:
        self.current = schema.load(self.home)
        if not schema.config_path(self.home).exists():
            schema.save(self.home, self.current)
        self.env = open_writer(self.home, auth.DOMAIN)
        self.tokens = self.env.open_db(auth.TOKENS_DB.encode())
        self.ensure_key()
        self.applying: dict[str, tuple[Any, ConfigUpdated]] = {}
        self.round = 0

    def ensure_key(self) -> None:
        """Generate an API key at first start when no key of any kind is configured."""
        if os.environ.get("OXIOS_API_KEY") or self.current["security"]["api_key"]:
            return
        with self.env.begin(db=self.tokens) as txn:
            if txn.stat(self.tokens)["entries"]:
                return
        token = "oxk_" + secrets.token_urlsafe(32)
        schema.write_atomic(auth.key_file(self.home), (token + "\n").encode(), mode=0o600)
        self._register(token, "generated at first start")

    def _register(self, token: str, label: str) -> None:
        with self.env.begin(write=True, db=self.tokens) as txn:
            txn.put(auth.token_hash(token).encode(), pack({"label": label, "created_at": rfc3339()}))

    def on_GetConfig(self, msg: GetConfig) -> ConfigUpdated:
        return ConfigUpdated(schema.public(self.current), self.current, [])

    def on_UpdateConfig(self, msg: UpdateConfig) -> Any:
        try:
            merged = schema.merge_and_validate(self.current, msg.patch)
        except schema.ConfigError as exc:
            return Failure(400, str(exc))
        restart = sorted(f"{s}.{k}" for s, k in schema.RESTART_FIELDS
                         if merged[s][k] != self.current[s][k])
        schema.save(self.home, merged)  # durable before the reply
        changed = sorted(f"{s}.{k}" for s, fields in merged.items() for k in fields
                         if self.current.get(s, {}).get(k) != merged[s][k])
        self.current = merged
        self.audit("api", "config_change", "config.json", True,
                   ("changed: " + ", ".join(changed)) if changed else "no change")
        answer = ConfigUpdated(schema.public(merged), merged, restart)
        kernel = self.directory.get("kernel")
        if kernel is None:
            return answer
        # Answer once every service has applied it (the Kernel collects the acks).
        self.applying[str(self.round)] = (self.reply_to, answer)
        self.send(kernel, Ask(f"apply:{self.round}", ConfigChanged(merged)))
        self.round += 1
        return DEFERRED

    def on_answer(self, rid: str, reply: Any) -> None:
        waiting = self.applying.pop(rid.partition(":")[2], None)
        if waiting is not None:
            self.reply(waiting[0], waiting[1])

    def on_RegisterToken(self, msg: RegisterToken) -> Any:
        if len(msg.token) < 16:
            return Failure(400, "token must be at least 16 characters")
        self._register(msg.token, msg.label)
        return TokenRegistered(auth.token_hash(msg.token)[:12])

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.env.close()
