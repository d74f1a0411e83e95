"""LMDB environments and msgpack records: where actor state lives (DESIGN rules 1 and 3).

One environment per domain under ``$OXIOS_HOME/state/<domain>``.  The owning actor
opens it read-write (``sync=True``: a committed transaction is on disk before the
actor replies), the edge opens it read-only; LMDB's MVCC means readers never
block the writer.  Environments are opened only inside the process that uses
them, never before a fork.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lmdb
import msgpack

MAP_SIZE = 1 << 36  # 64 GiB of address space; the file grows only as data is written
MAX_DBS = 32
MAX_READERS = 1024


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes | memoryview) -> Any:
    return msgpack.unpackb(bytes(data), raw=False, strict_map_key=False)


def seq_key(seq: int) -> bytes:
    """Big-endian 8-byte key: LMDB's byte order is then numeric order."""
    return seq.to_bytes(8, "big")


def key_seq(key: bytes | memoryview) -> int:
    return int.from_bytes(bytes(key), "big")


def state_dir(home: str | os.PathLike[str], domain: str) -> Path:
    return Path(home) / "state" / domain


def open_writer(home: str | os.PathLike[str], domain: str) -> lmdb.Environment:
    """Open a domain's environment for its owning actor (the only writer)."""
    path = state_dir(home, domain)
    path.mkdir(parents=True, exist_ok=True)
    env = lmdb.open(
        str(path), map_size=MAP_SIZE, max_dbs=MAX_DBS, max_readers=MAX_READERS,
        sync=True, metasync=True, subdir=True, lock=True,
    )
    env.reader_check()  # clear reader slots left by processes that died
    return env


def open_reader(home: str | os.PathLike[str], domain: str) -> lmdb.Environment | None:
    """Open a domain's environment read-only, or None if its owner never created it."""
    path = state_dir(home, domain)
    if not (path / "data.mdb").exists():
        return None
    return lmdb.open(
        str(path), map_size=MAP_SIZE, max_dbs=MAX_DBS, max_readers=MAX_READERS,
        readonly=True, lock=True, subdir=True,
    )


class ReadOnlyStore:
    """The edge's view of all domains: read-only environments opened on first use."""

    def __init__(self, home: str | os.PathLike[str]) -> None:
        self.home = Path(home)
        self._envs: dict[str, lmdb.Environment] = {}
        self._dbs: dict[tuple[str, str], Any] = {}
        self._missing: dict[str, float] = {}  # domain -> when to look for it again
        self._lock = threading.Lock()

    def env(self, domain: str) -> lmdb.Environment | None:
        env = self._envs.get(domain)
        if env is None:
            if self._missing.get(domain, 0.0) > time.monotonic():
                return None
            with self._lock:
                env = self._envs.get(domain)
                if env is None:
                    env = open_reader(self.home, domain)
                    if env is None:
                        self._missing[domain] = time.monotonic() + 1.0
                        return None
                    self._envs[domain] = env
        return env

    def db(self, domain: str, name: str) -> tuple[lmdb.Environment, Any] | None:
        env = self.env(domain)
        if env is None:
            return None
        handle = self._dbs.get((domain, name))
        if handle is None:
            try:
                handle = env.open_db(name.encode(), create=False)
            except lmdb.NotFoundError:
                return None
            self._dbs[(domain, name)] = handle
        return env, handle

    def get(self, domain: str, dbname: str, key: bytes) -> Any | None:
        found = self.db(domain, dbname)
        if found is None:
            return None
        env, db = found
        with env.begin(db=db) as txn:
            raw = txn.get(key)
        return None if raw is None else unpack(raw)

    def items(self, domain: str, dbname: str, *, reverse: bool = False) -> Iterator[tuple[bytes, Any]]:
        found = self.db(domain, dbname)
        if found is None:
            return
        env, db = found
        with env.begin(db=db) as txn:
            cursor = txn.cursor()
            it = cursor.iterprev() if reverse else cursor.iternext()
            for key, raw in it:
                yield bytes(key), unpack(raw)

    def count(self, domain: str, dbname: str) -> int:
        found = self.db(domain, dbname)
        if found is None:
            return 0
        env, db = found
        with env.begin(db=db) as txn:
            return int(txn.stat(db)["entries"])

    def check(self) -> list[str]:
        """Problems with the opened environments (empty when healthy)."""
        problems = []
        for domain, env in list(self._envs.items()):
            try:
                with env.begin() as txn:
                    txn.id()
            except lmdb.Error as exc:
                problems.append(f"{domain}: {exc}")
        return problems

    def close(self) -> None:
        with self._lock:
            for env in self._envs.values():
                env.close()
            self._envs.clear()
            self._dbs.clear()
