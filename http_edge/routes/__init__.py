"""One RouteTableDef per API section, assembled here."""

from . import cron, git, programs, skills, workspace
from . import agents, budget, chat, events, memory, personas, scheduler, security, seeds, system

TABLES = [system.routes, cron.routes, chat.routes, seeds.routes, personas.routes, agents.routes, events.routes, security.routes, scheduler.routes, budget.routes,
          memory.routes]
TABLES += [workspace.routes, skills.routes, programs.routes, git.routes]

__all__ = ["TABLES"]
