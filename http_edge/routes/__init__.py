"""One RouteTableDef per API section, assembled here."""

from . import events, system

TABLES = [system.routes, events.routes]

__all__ = ["TABLES"]
