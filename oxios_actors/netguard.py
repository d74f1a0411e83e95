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

import os
from typing import Any

BIND_ENV = "OXIOS_BIND_ADDR"
_installed: str | None = None


def install(bind_addr: str = "127.0.0.1") -> None:
    """Bind every Thespian socket of this process (and its children) to ``bind_addr``."""
    global _installed
    os.environ[BIND_ENV] = bind_addr
    os.environ["THESPIAN_BASE_IPADDR"] = bind_addr
    if _installed is not None:
        _installed = bind_addr
        return
    from thespian.system.transport import IPBase

    original = IPBase.IPActorAddress.__init__

    def guarded_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        host, port = self.bindname[0], self.bindname[1]
        if host in ("", "0.0.0.0", None) and _installed:
            self.bindname = (_installed, port)

    IPBase.IPActorAddress.__init__ = guarded_init
    _installed = bind_addr


def installed_address() -> str | None:
    return _installed


if os.environ.get(BIND_ENV):
    install(os.environ[BIND_ENV])
