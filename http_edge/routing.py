"""Declarative routes with the metadata an OpenAPI document is generated from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    summary: str
    auth: bool = True
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)


class ApiRoutes(web.RouteTableDef):
    """A ``RouteTableDef`` whose routes also record ``RouteInfo``."""

    def __init__(self, tag: str) -> None:
        super().__init__()
        self.tag = tag
        self.infos: list[RouteInfo] = []

    def api(self, method: str, path: str, summary: str, *, auth: bool = True,
            request: dict[str, Any] | None = None,
            response: dict[str, Any] | None = None) -> Callable[[Any], Any]:
        info = RouteInfo(method, path, summary, auth, request, response, (self.tag,))
        self.infos.append(info)

        def deco(handler: Any) -> Any:
            handler.__api__ = info
            return self.route(method, path)(handler)

        return deco


def openapi(tables: list[ApiRoutes], version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for table in tables:
        for info in table.infos:
            op: dict[str, Any] = {"summary": info.summary, "tags": list(info.tags),
                                  "responses": {"200": {"description": "OK"}}}
            if info.response:
                op["responses"]["200"]["content"] = {"application/json": {"schema": info.response}}
            if info.request:
                op["requestBody"] = {"content": {"application/json": {"schema": info.request}}}
            if info.auth:
                op["security"] = [{"bearer": []}]
            paths.setdefault(info.path, {})[info.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Oxios Agent OS", "version": version},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
