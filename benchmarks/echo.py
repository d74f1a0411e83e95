"""A trivial echo actor: the raw Thespian baseline for the ask path.

Created through the benchmark's own connection to the running actor system
(``createActor("benchmarks.echo.Echo")``); the admin forks it from the launcher,
whose working directory is the repo root, so this module is importable there.
"""

from __future__ import annotations

from typing import Any

from thespian.actors import Actor, ActorExitRequest


class Echo(Actor):
    def receiveMessage(self, msg: Any, sender: Any) -> None:
        if isinstance(msg, ActorExitRequest):
            return
        self.send(sender, msg)
