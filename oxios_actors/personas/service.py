"""Personas: the only writer of persona records and of the active persona."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ..messages import Failure, Ok
from ..service import ServiceActor, rfc3339
from ..store import open_writer, pack, unpack
from . import records


@dataclass(frozen=True)
class CreatePersona:
    fields: dict[str, Any]


@dataclass(frozen=True)
class UpdatePersona:
    id: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeletePersona:
    id: str


@dataclass(frozen=True)
class ActivatePersona:
    id: str


class Personas(ServiceActor):
    name = "personas"

    def on_configure(self) -> None:
        self.env = open_writer(self.home, records.DOMAIN)
        self.db = self.env.open_db(records.PERSONAS_DB.encode())
        self.meta = self.env.open_db(records.META_DB.encode())
        with self.env.begin(write=True) as txn:
            if txn.stat(self.db)["entries"] == 0 and txn.get(b"seeded", db=self.meta) is None:
                for p in records.DEFAULTS:
                    txn.put(p["id"].encode(), pack({**p, "created_at": rfc3339()}), db=self.db)
                wanted = records.candidate_ids(str(self.section("persona").get("default", "dev")))
                default = next((c for c in wanted if txn.get(c.encode(), db=self.db)), "persona-dev")
                txn.put(b"active", pack(default), db=self.meta)
                txn.put(b"seeded", pack(True), db=self.meta)

    def load(self, pid: str) -> dict[str, Any] | None:
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(pid.encode())
        return None if raw is None else unpack(raw)

    def on_CreatePersona(self, msg: CreatePersona) -> Any:
        try:
            fields = records.validate(msg.fields, partial=False)
        except ValueError as exc:
            return Failure(400, str(exc))
        pid = str(uuid.uuid4())
        persona = {"id": pid, "system_prompt": "", "enabled": True, "model": None, "personality_traits": [],
                   **fields, "created_at": rfc3339()}
        with self.env.begin(write=True, db=self.db) as txn:
            txn.put(pid.encode(), pack(persona))
        return Ok({"status": "created", "id": pid, "name": persona["name"]})

    def on_UpdatePersona(self, msg: UpdatePersona) -> Any:
        try:
            fields = records.validate(msg.fields, partial=True)
        except ValueError as exc:
            return Failure(400, str(exc))
        persona = self.load(msg.id)
        if persona is None:
            return Failure(404, f"persona {msg.id} not found")
        persona.update(fields)
        with self.env.begin(write=True) as txn:
            txn.put(msg.id.encode(), pack(persona), db=self.db)
            active = txn.get(b"active", db=self.meta)
            if not persona["enabled"] and active is not None and unpack(active) == msg.id:
                self._activate_another(txn, exclude=msg.id)
        return Ok({"status": "updated", "id": msg.id})

    def _activate_another(self, txn: Any, exclude: str) -> None:
        for _key, raw in txn.cursor(db=self.db).iternext():
            p = unpack(raw)
            if p["id"] != exclude and p.get("enabled"):
                txn.put(b"active", pack(p["id"]), db=self.meta)
                return
        txn.delete(b"active", db=self.meta)

    def on_DeletePersona(self, msg: DeletePersona) -> Any:
        with self.env.begin(write=True) as txn:
            if txn.get(msg.id.encode(), db=self.db) is None:
                return Failure(404, f"persona {msg.id} not found")
            if txn.stat(self.db)["entries"] <= 1:
                return Failure(400, "Cannot delete the last persona")
            txn.delete(msg.id.encode(), db=self.db)
            active = txn.get(b"active", db=self.meta)
            if active is not None and unpack(active) == msg.id:
                self._activate_another(txn, exclude=msg.id)
        return Ok({"status": "deleted", "id": msg.id})

    def on_ActivatePersona(self, msg: ActivatePersona) -> Any:
        persona = self.load(msg.id)
        if persona is None:
            return Failure(404, f"persona {msg.id} not found")
        if not persona.get("enabled"):
            return Failure(400, f"persona {msg.id} is disabled and cannot be activated")
        with self.env.begin(write=True, db=self.meta) as txn:
            txn.put(b"active", pack(msg.id))
        return Ok({"status": "active", "id": msg.id, "name": persona["name"]})

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.env.close()
