"""Keep Thespian's TCP transport off every interface but the one we choose.

Thespian's ``TCPTransport`` unpickles whatever reaches its sockets, and every
socket it opens for an actor, the admin or an external client is bound to
``('', port)`` -- all interfaces -- because ``IPActorAddress`` sets
``bindname = ('', port)`` whenever the address is "external" (which is always
the case for listening endpoints).  ``THESPIAN_BASE_IPADDR`` only changes the
address that is *advertised*, not the one that is bound.

The guard wraps ``IPActorAddress.__init__`` so that a wildcard bind name
becomes the configured address (loopback on a single node).  Why this is sound:

* every listening socket Thespian creates goes through ``bindArgs`` of an
  ``IPActorAddress`` (TCPTransport.__init__, probeAdmin) -- there is no other
  bind in the package;
* the guard is installed in the launcher *before* the admin is started, and
  Thespian forks the admin and every actor from there ("fork" start method),
  so every actor process inherits the patched class; the environment variable
  re-installs it on import in any process started another way (spawn);
* the advertised address (``THESPIAN_BASE_IPADDR``) is set to the same value,
  so actors never hand out an address they do not listen on.

A test lists the LISTEN sockets of the whole process tree with psutil and
asserts that every one of them is on loopback.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

BIND_ENV = "OXIOS_BIND_ADDR"
ALLOW_ENV = "OXIOS_ALLOWED_PEERS"
_installed: str | None = None
_allowed: frozenset[str] | None = None


def install(bind_addr: str = "127.0.0.1", allowed_peers: list[str] | None = None) -> None:
    """Bind every Thespian socket of this process (and its children) to ``bind_addr``;
    with ``allowed_peers``, accept connections only from those addresses (cluster
    members) and ``bind_addr`` itself."""
    global _installed, _allowed
    os.environ[BIND_ENV] = bind_addr
    os.environ["THESPIAN_BASE_IPADDR"] = bind_addr
    if allowed_peers is not None:
        _allowed = frozenset({*allowed_peers, bind_addr})
        os.environ[ALLOW_ENV] = ",".join(sorted(_allowed))
    if _installed is not None:
        _installed = bind_addr
        return
    from thespian.system.transport import IPBase, TCPTransport

    original = IPBase.IPActorAddress.__init__

    def guarded_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        host, port = self.bindname[0], self.bindname[1]
        if host in ("", "0.0.0.0", None) and _installed:
            self.bindname = (_installed, port)

    IPBase.IPActorAddress.__init__ = guarded_init

    # Members only: the TCP transport takes every inbound connection in
    # ``_acceptNewIncoming``.  The guarded copy below is Thespian's own method with one
    # addition -- a peer outside the allow-list is closed before a byte of it is read
    # (let alone unpickled) -- and one fix: Thespian's error path queues a marker that
    # crashes the admin's handler, so a refused or failed accept simply returns.
    transport_cls = TCPTransport.TCPTransport
    original_accept = transport_cls._acceptNewIncoming

    def guarded_accept(self: Any) -> None:
        if _allowed is None:
            return original_accept(self)
        try:
            lsock, peer = self.new_socket(self.socket.accept)
        except OSError:
            return  # nothing pending after all, or out of descriptors: next select
        self._check_indicators()
        if peer[0] not in _allowed:
            lsock.close()
            return
        if peer == self.myAddress:
            self._incomingEnvelopes.append(TCPTransport.Thespian__UpdateWork())
        lsock.setblocking(0)
        try:
            lsock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
        incoming = (TCPTransport.TCPIncomingPersistent if hasattr(self, "_openSockets")
                    else TCPTransport.TCPIncoming)
        self._incomingSockets[lsock.fileno()] = incoming(TCPTransport.ActorAddress(None), lsock)

    transport_cls._acceptNewIncoming = guarded_accept
    _installed = bind_addr


def installed_address() -> str | None:
    return _installed


def allowed_peers() -> frozenset[str] | None:
    return _allowed


if os.environ.get(BIND_ENV):
    install(os.environ[BIND_ENV],
            os.environ[ALLOW_ENV].split(",") if os.environ.get(ALLOW_ENV) else None)
