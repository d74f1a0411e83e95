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


class Recorder(Actor):
    """Records every message it gets (a task owner, a stand-in audit ledger).

    Queries, plain or wrapped in an ``Ask`` (answered with an ``Answer``):
    ``"recorded"`` -> tuple of the messages so far; ``"clear"`` -> how many were dropped.
    ``("send", target, messages)`` sends all ``messages`` to ``target`` at once (a
    burst; the replies come back here and are recorded).
    """

    def __init__(self):
        super().__init__()
        self.seen = []

    def receiveMessage(self, msg, sender):
        from thespian.actors import ActorExitRequest, ChildActorExited

        from oxios_actors.messages import Answer, Ask

        if isinstance(msg, (ActorExitRequest, ChildActorExited)):
            return
        rid = None
        if isinstance(msg, Ask):
            rid, msg = msg.rid, msg.request
        if isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "send":
            for each in msg[2]:
                self.send(msg[1], each)
            return
        if msg == "recorded":
            reply = tuple(self.seen)
        elif msg == "clear":
            reply, self.seen = len(self.seen), []
        else:
            self.seen.append(msg)
            return
        self.send(sender, Answer(rid, reply) if rid is not None else reply)


from oxios_actors.scheduler.actor import Scheduler  # noqa: E402


class FastScheduler(Scheduler):
    """The real Scheduler in accelerated time: 20 clock seconds per real second
    (its 60 s rate window passes in 3 s)."""

    time_scale = 20.0
