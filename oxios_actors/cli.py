"""``oxios`` command line: ``oxios serve`` starts the actor system and the edge."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import signal
import sys
from pathlib import Path

from . import __version__

DEFAULT_ACTOR_PORT = 1900


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def oxios_home() -> Path:
    return Path(os.environ.get("OXIOS_HOME") or Path.home() / ".oxios").expanduser().resolve()


async def serve_edge(edge: object, host: str, port: int) -> None:
    from aiohttp import web

    from http_edge.app import create_app

    app = create_app(edge)  # type: ignore[arg-type]
    # handler_cancellation: a client that disconnects cancels its handler at once, so a
    # gone SSE or WebSocket client leaves the fan-out immediately.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"oxios: serving on http://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        print("oxios: stopping", flush=True)
        await runner.cleanup()


def cmd_serve(args: argparse.Namespace) -> int:
    from .runtime import ActorRuntime, RuntimeStartError
    from .system import auth
    from .system import config as schema

    home = oxios_home()
    home.mkdir(parents=True, exist_ok=True)
    try:
        cfg = schema.load(home)
    except schema.ConfigError as exc:
        print(f"oxios: {exc}", file=sys.stderr)
        return 2
    host = args.host or cfg["server"]["host"]
    port = args.port or cfg["server"]["port"]
    if not is_loopback(host) and not cfg["security"]["auth_enabled"] and not args.insecure:
        print(f"oxios: refusing to serve on {host} with authentication disabled "
              "(enable security.auth_enabled or pass --insecure)", file=sys.stderr)
        return 2
    actor_port = int(os.environ.get("OXIOS_ACTOR_PORT") or DEFAULT_ACTOR_PORT)
    cluster = cfg["cluster"]
    bind = args.cluster_bind or cluster["bind"]
    allow = [a for a in (args.allow.split(",") if args.allow else cluster["allowed_peers"]) if a] or None
    if not is_loopback(bind) and not allow:
        print("oxios: a non-loopback actor address needs an allow-list of cluster members "
              "(--allow or cluster.allowed_peers)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    # Handle SIGTERM during start-up too: the runtime is stopped in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    runtime = ActorRuntime(home, actor_port, bind, allow=allow,
                           reregistration_secs=cluster["reregistration_secs"])
    edge = None
    try:
        runtime.start()
        from http_edge.app import close, connect

        edge = connect(home, actor_port, bind=bind, allow=allow)
        print(f"oxios {__version__}: home {home}, actor system on {bind}:{actor_port}", flush=True)
        if os.environ.get("OXIOS_API_KEY"):
            print("oxios: API key: the value of OXIOS_API_KEY", flush=True)
        elif cfg["security"]["api_key"]:
            print("oxios: API key: security.api_key in the config", flush=True)
        elif auth.key_file(home).exists():
            print(f"oxios: API key is in {auth.key_file(home)} "
                  f"(curl -H \"Authorization: Bearer $(cat {auth.key_file(home)})\" "
                  f"http://{host}:{port}/api/status)", flush=True)
        asyncio.run(serve_edge(edge, host, port))
        return 0
    except RuntimeStartError as exc:
        print(f"oxios: could not start the actor system: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if edge is not None:
            close(edge)
        runtime.stop()


def cmd_node(args: argparse.Namespace) -> int:
    """A worker node: a Thespian admin that joins the home node's convention."""
    from .runtime import ActorRuntime, RuntimeStartError

    home = oxios_home()
    home.mkdir(parents=True, exist_ok=True)
    host, _, port = args.join.rpartition(":")
    if not host or not port.isdigit():
        print("oxios: --join takes HOST:ACTOR_PORT", file=sys.stderr)
        return 2
    allow = [a for a in args.allow.split(",") if a] if args.allow else None
    if not is_loopback(args.bind) and not allow:
        print("oxios: a non-loopback worker needs --allow with the cluster members", file=sys.stderr)
        return 2
    actor_port = args.actor_port or int(os.environ.get("OXIOS_ACTOR_PORT") or DEFAULT_ACTOR_PORT + 1)
    runtime = ActorRuntime(home, actor_port, args.bind, allow=allow, join=args.join,
                           capabilities=args.capability, node_name=args.name)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    try:
        info = runtime.start()
        print(f"oxios: worker node {info['node']} on {args.bind}:{actor_port} joined {args.join} "
              f"with capabilities {', '.join(args.capability) or '(none)'}", flush=True)
        while not stop["now"] and runtime.proc is not None and runtime.proc.poll() is None:
            signal.sigtimedwait([signal.SIGTERM, signal.SIGINT], 0.5)
        return 0
    except RuntimeStartError as exc:
        print(f"oxios: could not start the worker node: {exc}", file=sys.stderr)
        return 1
    finally:
        runtime.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oxios", description="Oxios Agent OS (actor runtime)")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the actor system and the HTTP edge")
    serve.add_argument("--host", default=None, help="address to serve HTTP on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default 4200)")
    serve.add_argument("--insecure", action="store_true",
                       help="allow a non-loopback host with authentication disabled")
    serve.add_argument("--cluster-bind", default=None,
                       help="address the actor system binds to (default cluster.bind, 127.0.0.1)")
    serve.add_argument("--allow", default="", help="comma-separated cluster member addresses")
    serve.set_defaults(func=cmd_serve)
    node = sub.add_parser("node", help="start a worker node that joins a home node")
    node.add_argument("--join", required=True, help="HOST:ACTOR_PORT of the home node")
    node.add_argument("--capability", action="append", default=[], help="a capability to advertise (repeatable)")
    node.add_argument("--bind", default="127.0.0.1", help="address this node's actors bind to")
    node.add_argument("--allow", default="", help="comma-separated cluster member addresses")
    node.add_argument("--name", default="", help="node name (default worker-<host>-<port>)")
    node.add_argument("--actor-port", type=int, default=0, help="this node's admin port (default 1901)")
    node.set_defaults(func=cmd_node)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
