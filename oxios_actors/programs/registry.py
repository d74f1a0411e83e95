"""ProgramRegistry: installs, upgrades, enables/disables and uninstalls programs.

A separate actor from the Workspace so that a slow download never holds up
file writes and commits; it writes only under ``.oxios/programs`` (git-ignored).
An install is staged in ``.oxios/programs/.staging/<id>`` and moved into place
with a rename only after every check passed, so a bad archive leaves nothing
behind.  Enable/disable state lives in LMDB (``records.py``).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from ..messages import Failure
from ..paths import workspace_root
from ..service import ServiceActor, rfc3339
from ..store import open_writer, pack, unpack
from ..workspace.pathguard import UnsafePath, check_name, confine
from . import fetch, records
from .manifest import ManifestError, load_manifest
from .messages import (
    InstallProgram,
    ProgramEnabled,
    ProgramInstalled,
    ProgramUninstalled,
    SetProgramEnabled,
    UninstallProgram,
)

log = logging.getLogger("oxios.programs")


class ProgramRegistry(ServiceActor):
    name = "programs"

    def on_configure(self) -> None:
        self.root: Path = workspace_root(self.home, self.config)
        self.env = open_writer(self.home, records.DOMAIN)
        self.db = self.env.open_db(records.STATE_DB.encode())
        self.counts = {"installed": 0, "failed": 0, "uninstalled": 0}
        try:
            shutil.rmtree(self.staging_root(), ignore_errors=True)  # leftovers of a crash
        except UnsafePath as exc:
            log.error("programs: %s", exc.message)

    def staging_root(self) -> Path:
        return confine(self.root, f"{records.PROGRAMS_DIR}/{records.STAGING}")

    def limits(self) -> fetch.Limits:
        return fetch.Limits.from_config(self.section("programs"))

    def state(self, name: str) -> dict[str, Any] | None:
        with self.env.begin(db=self.db) as txn:
            raw = txn.get(name.encode())
        return None if raw is None else dict(unpack(raw))

    def put_state(self, name: str, state: dict[str, Any] | None) -> None:
        with self.env.begin(write=True, db=self.db) as txn:
            if state is None:
                txn.delete(name.encode())
            else:
                txn.put(name.encode(), pack(state))

    # -- install ------------------------------------------------------------
    def on_InstallProgram(self, msg: InstallProgram) -> Any:
        limits = self.limits()
        try:
            kind = fetch.classify_source(msg.source)
            staging = self.staging_root() / uuid.uuid4().hex
        except fetch.InstallError as exc:
            return Failure(exc.status, exc.message)
        except UnsafePath as exc:
            return Failure(exc.status, exc.message)
        try:
            staging.mkdir(parents=True)
            fetched = staging / "src"
            if kind == "git":
                fetch.clone(msg.source, fetched, limits)
            else:
                archive = staging / "download"
                fetch.download(msg.source, archive, limits)
                cap = limits.max_unpacked_bytes + 1024 * (limits.max_files + 20)  # + tar headers
                plain = fetch.decompress(archive, staging / "download.tar", cap)
                fetch.unpack(plain, fetched, limits)
            fetch.scan_tree(fetched, limits)
            source_dir = fetch.program_root(fetched)
            manifest = load_manifest(source_dir)
            self.move_into_place(source_dir, records.program_dir(self.root, manifest.name), staging)
        except (fetch.InstallError, ManifestError, UnsafePath) as exc:
            self.counts["failed"] += 1
            status = getattr(exc, "status", 400)
            return Failure(status, f"installation failed: {getattr(exc, 'message', str(exc))}")
        except OSError as exc:
            self.counts["failed"] += 1
            return Failure(500, f"installation failed: {exc}")
        finally:
            self.clean(staging)
        previous = self.state(manifest.name) or {}
        now = rfc3339()
        self.put_state(manifest.name, {"enabled": previous.get("enabled", True), "installed_at": now,
                                       "last_modified": now, "source": msg.source,
                                       "version": manifest.version})
        self.counts["installed"] += 1
        self.audit(msg.author, "program_install", manifest.name, True,
                   f"version {manifest.version} from {msg.source[:500]}")
        return ProgramInstalled(manifest.name, manifest.version)

    @staticmethod
    def move_into_place(source: Path, final: Path, staging: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        old = staging / "previous"
        if final.exists() or final.is_symlink():
            os.rename(final, old)
        try:
            os.rename(source, final)
        except OSError:
            if old.exists():
                os.rename(old, final)
            raise

    def clean(self, staging: Path) -> None:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            self.staging_root().rmdir()  # only when empty
        except (OSError, UnsafePath):
            pass

    # -- the rest -----------------------------------------------------------
    def on_UninstallProgram(self, msg: UninstallProgram) -> Any:
        try:
            path = records.program_dir(self.root, msg.name)
            trash = self.staging_root() / uuid.uuid4().hex
        except UnsafePath as exc:
            return Failure(exc.status, exc.message)
        if not path.is_dir() and self.state(msg.name) is None:
            return Failure(404, f"program not found: {msg.name}")
        if path.is_dir():
            trash.mkdir(parents=True)
            os.rename(path, trash / "program")
            self.clean(trash)
        self.put_state(msg.name, None)
        self.counts["uninstalled"] += 1
        self.audit(msg.author, "program_uninstall", msg.name, True, None)
        return ProgramUninstalled(msg.name)

    def on_SetProgramEnabled(self, msg: SetProgramEnabled) -> Any:
        try:
            check_name(msg.name, "program name")
            found = records.load(self.root, msg.name)
        except UnsafePath as exc:
            return Failure(exc.status, exc.message)
        if found is None:
            return Failure(404, f"program not found: {msg.name}")
        state = self.state(msg.name) or {"installed_at": rfc3339(), "source": None,
                                          "version": found[1].version}
        state.update(enabled=bool(msg.enabled), last_modified=rfc3339())
        self.put_state(msg.name, state)
        return ProgramEnabled(msg.name, bool(msg.enabled))

    def stats(self) -> dict[str, Any]:
        return dict(getattr(self, "counts", {}))

    def on_stop(self) -> None:
        if hasattr(self, "env"):
            self.env.close()
