"""Tiny actors the tests create inside the real actor system to provoke failures."""

from __future__ import annotations

from thespian.actors import Actor


class Silent(Actor):
    """Never answers: asks to it must time out."""

    def receiveMessage(self, msg, sender):  # noqa: D401
        return


class Crasher(Actor):
    """Raises on every message: Thespian answers the sender with PoisonMessage."""

    def receiveMessage(self, msg, sender):
        if isinstance(msg, str) or hasattr(msg, "rid"):
            raise RuntimeError("boom")
