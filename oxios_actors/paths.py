"""Where things live under ``$OXIOS_HOME``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def workspace_root(home: str | os.PathLike[str], config: dict[str, Any]) -> Path:
    """``kernel.workspace`` from the config; a relative path is relative to the home."""
    raw = str(config.get("kernel", {}).get("workspace") or "workspace")
    path = Path(raw).expanduser()
    return (path if path.is_absolute() else Path(home) / path).resolve()
