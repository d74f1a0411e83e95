"""The edge <-> actor bridge (DESIGN rule 2).

Asks run on a small thread pool; each thread holds its own
``ActorSystem().private()`` context, because replies to a shared context get
misdelivered.  Every ask carries a request id and a timeout: a reply with
another id (a late answer to an ask that timed out) is discarded, a timeout or
a dead actor becomes 503/504, a ``PoisonMessage`` 500, a ``Failure`` its own
status.  The event loop never waits on an actor.

A control thread keeps the directory of services fresh, holds the EventBus
subscription (renewing its lease) and forwards ``LogAdvanced`` to the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from thespian.actors import ActorSystem, PoisonMessage

from oxios_actors import netguard
from oxios_actors.events.messages import LogAdvanced, Subscribe, Subscribed
from oxios_actors.kernel import KERNEL_NAME, Directory, GetDirectory, WatchDirectory
from oxios_actors.messages import Answer, Ask, Failure

from .errors import ApiError

log = logging.getLogger("oxios.edge.bridge")

_TIMEOUT = object()
LEASE_SECS = 30.0


class ActorBridge:
    def __init__(self, actor_port: int, *, threads: int = 8, timeout: float = 10.0,
                 bind: str = "127.0.0.1", allow: list[str] | None = None) -> None:
        self.allow = allow
        self.actor_port = actor_port
        self.threads = threads
        self.timeout = timeout
        self.bind = bind
        self.directory: dict[str, Any] = {}
        self.generation = -1
        self._local = threading.local()
        self._contexts: list[Any] = []
        self._ctx_lock = threading.Lock()
        self._stop = threading.Event()
        self._control: threading.Thread | None = None
        self.on_log_advanced: Callable[[int], None] | None = None
        self.asks = 0
        self.ask_failures = 0

    # -- lifecycle --------------------------------------------------------
    def start(self) -> None:
        netguard.install(self.bind, self.allow)
        self.asys = ActorSystem("multiprocTCPBase", capabilities={"Admin Port": self.actor_port},
                                transientUnique=True)
        self.kernel = self.asys.createActor("oxios_actors.kernel.Kernel", globalName=KERNEL_NAME)
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="oxios-ask",
                                       initializer=self._init_thread)
        self._control_ctx = self._new_context()
        self.refresh_sync(self._control_ctx)

    def start_control(self, loop: asyncio.AbstractEventLoop, on_log_advanced: Callable[[int], None]) -> None:
        """Subscribe to the EventBus and forward log advances to ``loop``."""
        def forward(seq: int) -> None:
            loop.call_soon_threadsafe(on_log_advanced, seq)

        self.on_log_advanced = forward
        self._control = threading.Thread(target=self._control_loop, name="oxios-control", daemon=True)
        self._control.start()

    def close(self) -> None:
        self._stop.set()
        if self._control is not None:
            self._control.join(5)
        if hasattr(self, "pool"):
            self.pool.shutdown(wait=True, cancel_futures=True)
        with self._ctx_lock:
            for cm, _ in self._contexts:
                try:
                    cm.__exit__(None, None, None)
                except Exception:  # closing a transport that already failed
                    pass
            self._contexts.clear()
        if hasattr(self, "asys"):
            try:  # close our own endpoint without shutting the admin down
                self.asys._systemBase.transport.close()
            except Exception:
                pass

    def _new_context(self) -> Any:
        cm = self.asys.private()
        ctx = cm.__enter__()
        with self._ctx_lock:
            self._contexts.append((cm, ctx))
        return ctx

    def _init_thread(self) -> None:
        self._local.ctx = self._new_context()

    # -- asks -------------------------------------------------------------
    def _ask_sync(self, ctx: Any, addr: Any, request: Any, timeout: float) -> Any:
        rid = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        reply = ctx.ask(addr, Ask(rid, request), timeout)
        while True:
            if reply is None:
                return _TIMEOUT
            if isinstance(reply, Answer):
                if reply.rid == rid:
                    return reply.reply
            elif isinstance(reply, PoisonMessage):
                return Failure(500, f"the actor could not process {type(request).__name__}")
            elif isinstance(reply, LogAdvanced):
                if self.on_log_advanced is not None:
                    self.on_log_advanced(reply.seq)
            elif isinstance(reply, Directory):
                self._set_directory(reply)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return _TIMEOUT
            reply = ctx.listen(remaining)

    def ask_sync(self, service: str, request: Any, timeout: float | None = None) -> Any:
        """Blocking ask from a pool thread or a test: raises ApiError on failure."""
        ctx = getattr(self._local, "ctx", None) or self._control_ctx
        return self._check(service, self._ask_sync(ctx, self._address(service), request,
                                                   timeout or self.timeout), timeout)

    async def ask(self, service: str, request: Any, timeout: float | None = None) -> Any:
        """Ask the named service; raises ApiError on timeout, death or Failure."""
        return await self.ask_address(self._address(service), request, timeout, service)

    async def ask_address(self, addr: Any, request: Any, timeout: float | None = None,
                          service: str = "actor") -> Any:
        t = timeout or self.timeout
        loop = asyncio.get_running_loop()
        self.asks += 1
        result = await loop.run_in_executor(
            self.pool, lambda: self._ask_sync(self._local.ctx, addr, request, t))
        if result is _TIMEOUT:
            await loop.run_in_executor(self.pool, lambda: self.refresh_sync(self._local.ctx))
        return self._check(service, result, t, addr)

    def tell(self, service: str, message: Any) -> None:
        """Fire and forget from the event loop (the send happens on a pool thread)."""
        addr = self.directory.get(service)
        if addr is not None:
            self.pool.submit(lambda: self._local.ctx.tell(addr, message))

    def _address(self, service: str) -> Any:
        if service == "kernel":
            return self.kernel
        addr = self.directory.get(service)
        if addr is None:
            raise ApiError(503, f"the {service} service is not available")
        return addr

    def _check(self, service: str, result: Any, timeout: float | None, addr: Any = None) -> Any:
        if result is _TIMEOUT:
            self.ask_failures += 1
            if addr is not None and self.directory.get(service) not in (None, addr):
                raise ApiError(503, f"the {service} service was restarted; retry the request",
                               {"Retry-After": "1"})
            raise ApiError(504, f"the {service} service did not answer within {timeout}s")
        if isinstance(result, Failure):
            raise ApiError(result.status, result.error)
        return result

    # -- directory and events --------------------------------------------
    def refresh_sync(self, ctx: Any) -> None:
        result = self._ask_sync(ctx, self.kernel, GetDirectory(), 5.0)
        if isinstance(result, Directory):
            self._set_directory(result)

    def _control_loop(self) -> None:
        """Holds two leases: the Kernel pushes directory changes (a restarted service's
        new address arrives at once), the EventBus pushes log advances."""
        ctx = self._control_ctx
        subscribed_to = None
        renew_bus = renew_kernel = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                if now >= renew_kernel:
                    result = self._ask_sync(ctx, self.kernel, WatchDirectory(LEASE_SECS), 5.0)
                    if isinstance(result, Directory):
                        self._set_directory(result)
                        renew_kernel = now + LEASE_SECS / 3
                bus = self.directory.get("events")
                if bus is not None and (bus != subscribed_to or now >= renew_bus):
                    result = self._ask_sync(ctx, bus, Subscribe(LEASE_SECS), 5.0)
                    if isinstance(result, Subscribed):
                        subscribed_to, renew_bus = bus, now + LEASE_SECS / 3
                        if self.on_log_advanced is not None:
                            self.on_log_advanced(result.last_seq)
                msg = ctx.listen(0.5)
                if isinstance(msg, LogAdvanced) and self.on_log_advanced is not None:
                    self.on_log_advanced(msg.seq)
                elif isinstance(msg, Directory):
                    self._set_directory(msg)
            except Exception:  # keep the control loop alive whatever happens
                log.exception("control loop error")
                self._stop.wait(1.0)

    def _set_directory(self, directory: Directory) -> None:
        if directory.generation >= self.generation:
            self.directory = dict(directory.services)
            self.generation = directory.generation
