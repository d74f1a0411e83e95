"""One RouteTableDef per API section, assembled here."""

from . import (
          agents,
          budget,
          chat,
          cron,
          events,
          git,
          memory,
          personas,
          programs,
          scheduler,
          security,
          seeds,
          skills,
          system,
          workspace,
)

TABLES = [system.routes, cron.routes, chat.routes, seeds.routes, personas.routes, agents.routes, events.routes, security.routes, scheduler.routes, budget.routes,
          memory.routes]
TABLES += [workspace.routes, skills.routes, programs.routes, git.routes]

__all__ = ["TABLES"]
