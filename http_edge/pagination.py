"""Pagination exactly as §26: page 1-indexed (0 means 1), limit default 50, capped at 500."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


@dataclass(frozen=True)
class Page:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit

    def body(self, items: list[Any], total: int) -> dict[str, Any]:
        return {"items": items, "total": total, "page": self.page, "limit": self.limit}

    def slice(self, items: Iterable[Any]) -> dict[str, Any]:
        everything = list(items)
        return self.body(everything[self.offset:self.offset + self.limit], len(everything))


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an integer") from None


def page_of(request: web.Request) -> Page:
    page = max(1, _int(request, "page", 1))
    limit = _int(request, "limit", DEFAULT_LIMIT)
    if limit < 1:
        raise ApiError(400, "limit must be at least 1")
    return Page(page, min(limit, MAX_LIMIT))
