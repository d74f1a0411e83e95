"""One RouteTableDef per API section, assembled here."""

from . import events, security, system

TABLES = [system.routes, events.routes, security.routes]

__all__ = ["TABLES"]
