"""Server processes for the benchmarks (each runs in its own interpreter, so the
load generator never competes with it for the GIL).

    python -m benchmarks.server edge --home H --actor-port A --port P
        connects to an already running actor system (the harness owns the
        ActorRuntime) and serves the real edge app exactly like ``oxios serve``
        (web.AppRunner(access_log=None) + TCPSite on 127.0.0.1).
    python -m benchmarks.server bare --port P
        the ceiling: a bare aiohttp app whose one handler returns the same JSON
        as ``GET /health``.

Each prints one JSON line ``{"ready": true, ...}`` once it accepts connections,
stops on SIGTERM/SIGINT or when its stdin closes (the harness died), and prints
a last JSON line with its counters before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import threading
from typing import Any

HOST = "127.0.0.1"


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop when the harness closes our stdin (or dies)."""
    def run() -> None:
        try:
            while os.read(sys.stdin.fileno(), 4096):
                pass
        except Exception:
            pass
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=run, name="stdin-watch", daemon=True).start()


async def serve(app: Any, port: int, ready_extra: dict[str, Any]) -> None:
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port, reuse_address=True, backlog=2048)
    await site.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    watch_stdin(loop, stop)
    emit({"ready": True, "port": port, "pid": os.getpid(), **ready_extra})
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run_bare(port: int) -> int:
    from aiohttp import web

    from oxios_actors import __version__

    body = {"status": "ok", "version": __version__}

    async def health(request: web.Request) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/health", health)
    asyncio.run(serve(app, port, {"kind": "bare"}))
    emit({"stopped": True})
    return 0


def run_edge(home: str, actor_port: int, port: int, profile: str | None = None) -> int:
    import logging

    from http_edge.app import close, connect, create_app

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    edge = connect(home, actor_port)
    stats: dict[str, Any] = {}
    try:
        from aiohttp import web

        app = create_app(edge)

        def counters() -> dict[str, Any]:
            fan = edge.fanout
            return {"bridge_asks": edge.bridge.asks, "bridge_ask_failures": edge.bridge.ask_failures,
                    "sse_clients": len(fan.clients) if fan else 0,
                    "sse_position": fan.position if fan else 0,
                    "sse_delivered": fan.delivered if fan else 0,
                    "sse_dropped": fan.dropped if fan else 0}

        async def bench_stats(request: web.Request) -> web.Response:
            # Benchmark-only route (not part of the product): server-side counters.
            return web.json_response(counters())

        async def collect(app: Any) -> None:
            stats.update(counters())

        app.router.add_get("/_bench/stats", bench_stats)
        app.on_shutdown.insert(0, collect)

        async def main() -> None:
            await serve(app, port, {"kind": "edge"})

        if profile:  # the event loop thread only (handlers, middleware, fan-out)
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            try:
                asyncio.run(main())
            finally:
                prof.disable()
                prof.dump_stats(profile)
                with open(profile + ".txt", "w") as f:
                    pstats.Stats(prof, stream=f).sort_stats("tottime").print_stats(40)
                    pstats.Stats(prof, stream=f).sort_stats("cumulative").print_stats(40)
        else:
            asyncio.run(main())
    finally:
        close(edge)
    emit({"stopped": True, **stats})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.server")
    sub = ap.add_subparsers(dest="kind", required=True)
    bare = sub.add_parser("bare")
    bare.add_argument("--port", type=int, required=True)
    edge = sub.add_parser("edge")
    edge.add_argument("--port", type=int, required=True)
    edge.add_argument("--home", required=True)
    edge.add_argument("--actor-port", type=int, required=True)
    edge.add_argument("--profile", help="write a cProfile of the event loop thread here")
    args = ap.parse_args(argv)
    if args.kind == "bare":
        return run_bare(args.port)
    return run_edge(args.home, args.actor_port, args.port, args.profile)


if __name__ == "__main__":
    sys.exit(main())
