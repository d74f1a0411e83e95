"""Messages of the programs domain (the ProgramRegistry actor)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InstallProgram:
    """Install (or upgrade) from a git URL or an http(s) tarball URL."""

    source: str
    author: str = "api"


@dataclass(frozen=True)
class ProgramInstalled:
    name: str
    version: str


@dataclass(frozen=True)
class UninstallProgram:
    name: str
    author: str = "api"


@dataclass(frozen=True)
class ProgramUninstalled:
    name: str


@dataclass(frozen=True)
class SetProgramEnabled:
    name: str
    enabled: bool


@dataclass(frozen=True)
class ProgramEnabled:
    name: str
    enabled: bool
