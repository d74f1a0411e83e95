"""One usearch HNSW index per memory type (usearch has no filtered search).

Cosine metric, connectivity 16, expansion_add 128, expansion_search 128, an explicit dtype
(f32 or f16), keys are the entries' ``key``.  An index file is a cache of the LMDB vectors:
it is saved atomically (temp file, fsync, rename, fsync of the folder) and only then its sha256,
size and ``upto`` (highest key it holds) are recorded in LMDB.  On load the bytes are checked
against that record before usearch sees them; a missing, changed or unreadable file -- or one
built for another model or dtype -- is rebuilt from the LMDB vectors, and a good file is caught up
with the vectors added after it was saved.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb
import numpy as np

from ..store import key_seq, pack, seq_key, unpack
from .embedding import preload_onnxruntime
from .records import MEMORY_TYPES

preload_onnxruntime()  # before usearch, always: see preload_onnxruntime

from usearch.index import Index  # noqa: E402

log = logging.getLogger("oxios.memory")

CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 128
DTYPES = ("f32", "f16")
BATCH = 4096
SYNC_REBUILD_MAX = 20_000


def new_index(ndim: int, dtype: str) -> Index:
    if dtype not in DTYPES:
        raise ValueError(f"unsupported index dtype {dtype!r}")
    return Index(ndim=ndim, metric="cos", dtype=dtype, connectivity=CONNECTIVITY,
                 expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)


def meta_key(memory_type: str) -> bytes:
    return f"index:{memory_type}".encode()


def write_file_atomic(path: Path, data: bytes | bytearray | memoryview) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass
class TypeIndex:
    memory_type: str
    index: Index
    upto: int = 0  # highest key this index holds
    dirty: bool = False


@dataclass
class OpenReport:
    loaded: list[str] = field(default_factory=list)  # verified file, then caught up
    rebuilt: dict[str, str] = field(default_factory=dict)  # type -> why
    caught_up: int = 0


class Indexes:
    """The HNSW indexes of all memory types, backed by ``<folder>/<type>.usearch``.

    A rebuild of up to ``sync_rebuild_max`` vectors happens inside ``open``; a larger one is
    left to ``rebuild_step`` (the actor calls it batch by batch between requests, so it stays
    responsive and boots in time): searches meanwhile see what was added so far, new writes
    go straight in, and an index is saved only once it is whole."""

    def __init__(self, folder: Path, env: lmdb.Environment, vectors_db: Any, meta_db: Any,
                 ndim: int, dtype: str, sync_rebuild_max: int = SYNC_REBUILD_MAX) -> None:
        self.folder = folder
        self.env, self.vectors_db, self.meta_db = env, vectors_db, meta_db
        self.ndim, self.dtype = ndim, dtype
        self.sync_rebuild_max = sync_rebuild_max
        self.model = ""
        self.by_type: dict[str, TypeIndex] = {}
        self.rebuilding: set[str] = set()
        self.rebuild_cursor = 0  # last vector key the rebuild has looked at
        self.rebuild_until = 0  # the highest key when it started (later ones are added directly)
        self.saves = 0

    def path(self, memory_type: str) -> Path:
        return self.folder / f"{memory_type}.usearch"

    # -- opening -----------------------------------------------------------------------------
    def open(self, model: str, rebuild: str | None = None) -> OpenReport:
        """Load every type's index for ``model`` (verified, caught up) or rebuild it (all of
        them when ``rebuild`` gives a reason)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.model = model
        report = OpenReport()
        for memory_type in MEMORY_TYPES:
            why = rebuild or self._load(memory_type)
            if why is None:
                report.loaded.append(memory_type)
            else:
                report.rebuilt[memory_type] = why
                self.by_type[memory_type] = TypeIndex(memory_type, new_index(self.ndim, self.dtype))
        report.caught_up = self._catch_up(report.loaded)
        self.rebuilding = set(report.rebuilt)
        with self.env.begin(db=self.vectors_db) as txn:
            cursor = txn.cursor()
            self.rebuild_until = key_seq(cursor.key()) if cursor.last() else 0
            total = int(txn.stat(self.vectors_db)["entries"])
        self.rebuild_cursor = 0
        if self.rebuilding and total <= self.sync_rebuild_max:
            while self.rebuild_step(max(total, 1)):
                pass
        return report

    def _load(self, memory_type: str) -> str | None:
        """None when the saved file was verified and loaded, else why it must be rebuilt."""
        with self.env.begin(db=self.meta_db) as txn:
            raw = txn.get(meta_key(memory_type))
        meta = unpack(raw) if raw is not None else None
        path = self.path(memory_type)
        if meta is None:
            return "no saved index recorded"
        if (meta.get("model"), meta.get("dtype"), meta.get("ndim")) != (self.model, self.dtype, self.ndim):
            return "saved for another model or dtype"
        try:
            data = path.read_bytes()
        except OSError:
            return "index file missing"
        if len(data) != meta["size"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
            return "index file does not match its checksum"
        index = new_index(self.ndim, self.dtype)
        try:
            if data:
                index.load(data)
        except (RuntimeError, ValueError) as exc:
            return f"index file unreadable: {exc}"
        self.by_type[memory_type] = TypeIndex(memory_type, index, int(meta["upto"]))
        return None

    def _vectors(self, after: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        with self.env.begin(db=self.vectors_db) as txn:
            cursor = txn.cursor()
            if not cursor.set_range(seq_key(after + 1)):
                return
            for key, raw in cursor.iternext():
                yield key_seq(key), unpack(raw)

    def _add_batches(self, records: Iterable[tuple[int, dict[str, Any]]], types: set[str]) -> int:
        """Add the records of ``types`` made by the current model that the indexes lack."""
        pending: dict[str, tuple[list[int], list[np.ndarray]]] = {}
        added = 0

        def flush(memory_type: str) -> int:
            keys, vecs = pending.pop(memory_type)
            index = self.by_type[memory_type].index
            karr = np.array(keys, dtype=np.uint64)
            fresh = ~np.asarray(index.contains(karr), dtype=bool).reshape(-1) if len(index) else None
            if fresh is not None:
                karr, varr = karr[fresh], np.stack(vecs)[fresh]
            else:
                varr = np.stack(vecs)
            if len(karr):
                self.add(memory_type, karr, varr, dirty=False)
            return len(karr)

        for key, record in records:
            if record["type"] not in types or record["model"] != self.model:
                continue
            keys, vecs = pending.setdefault(record["type"], ([], []))
            keys.append(key)
            vecs.append(np.frombuffer(record["vec"], dtype=np.float32))
            if len(keys) >= BATCH:
                added += flush(record["type"])
        for memory_type in list(pending):
            added += flush(memory_type)
        return added

    def rebuild_step(self, batch: int = BATCH) -> bool:
        """Add the next ``batch`` vectors to the indexes being rebuilt; False once they are
        whole (they are then saved)."""
        if not self.rebuilding:
            return False
        chunk: list[tuple[int, dict[str, Any]]] = []
        for key, record in self._vectors(self.rebuild_cursor):
            if key > self.rebuild_until:
                break
            chunk.append((key, record))
            if len(chunk) >= batch:
                break
        self._add_batches(chunk, self.rebuilding)
        if chunk:
            self.rebuild_cursor = chunk[-1][0]
        if chunk and self.rebuild_cursor < self.rebuild_until:
            return True
        done, self.rebuilding = self.rebuilding, set()
        for memory_type in done:
            self.save(memory_type)  # a rebuilt index is written out (and recorded) at once
        return False

    def _catch_up(self, loaded: list[str]) -> int:
        if not loaded:
            return 0
        since = min(self.by_type[t].upto for t in loaded)
        fresh = ((k, r) for k, r in self._vectors(since) if k > self.by_type[r["type"]].upto)
        added = self._add_batches(fresh, set(loaded))
        for memory_type in loaded:
            self.by_type[memory_type].dirty = self.by_type[memory_type].dirty or added > 0
        return added

    # -- use ---------------------------------------------------------------------------------
    def add(self, memory_type: str, keys: np.ndarray, vectors: np.ndarray, dirty: bool = True) -> None:
        ti = self.by_type[memory_type]
        ti.index.add(keys, vectors)
        ti.upto = max(ti.upto, int(keys.max()))
        if dirty:
            ti.dirty = True

    def search(self, query: np.ndarray, types: Iterable[str], count: int) -> list[tuple[int, float]]:
        """(key, cosine distance) nearest first, over the indexes of ``types`` merged."""
        found: list[tuple[int, float]] = []
        for memory_type in types:
            index = self.by_type[memory_type].index
            if len(index) == 0:
                continue
            matches = index.search(query, count)
            found.extend(zip((int(k) for k in matches.keys),
                             (float(d) for d in matches.distances), strict=True))
        found.sort(key=lambda kd: kd[1])
        return found[:count]

    def sizes(self) -> dict[str, int]:
        return {t: len(ti.index) for t, ti in self.by_type.items()}

    def memory_bytes(self) -> int:
        return sum(int(ti.index.memory_usage) for ti in self.by_type.values())

    # -- saving ------------------------------------------------------------------------------
    def dirty(self) -> list[str]:
        """Changed indexes that are whole (one being rebuilt is saved when it is done)."""
        return [t for t, ti in self.by_type.items() if ti.dirty and t not in self.rebuilding]

    def save(self, memory_type: str) -> None:
        ti = self.by_type[memory_type]
        data = ti.index.save() if len(ti.index) else b""
        assert data is not None
        write_file_atomic(self.path(memory_type), data)
        meta = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "upto": ti.upto,
                "count": len(ti.index), "model": self.model, "dtype": self.dtype, "ndim": self.ndim}
        with self.env.begin(write=True, db=self.meta_db) as txn:
            txn.put(meta_key(memory_type), pack(meta))
        ti.dirty = False
        self.saves += 1

    def save_dirty(self) -> list[str]:
        saved = self.dirty()
        for memory_type in saved:
            self.save(memory_type)
        return saved
