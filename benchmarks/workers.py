"""Load-generating worker processes (started by ``benchmarks.run``).

    python -m benchmarks.workers http --url U --connections 64 --start-at T --duration D [--header K:V]
        keep-alive HTTP GET load from one asyncio process; warms up until the
        wall-clock time ``--start-at``, measures for ``--duration`` seconds and
        prints one JSON line with counts and a latency histogram.

    python -m benchmarks.workers sse --url U --token T --clients N
        opens N SSE streams, prints {"connected": ...} once they are all open,
        then counts every event received and its publish->receipt delay (from
        the ``sent_at`` field).  On each stdin command ``round <seq> <secs>`` it
        waits (at most secs) until every client has seen id >= seq, prints the
        round's results as one JSON line and starts counting afresh; ``quit``
        or EOF on stdin ends it.

Histograms are sparse ``{bucket: count}`` maps so the harness can merge workers
and compute exact-enough percentiles: HTTP latency in 10 us buckets, SSE delay
in 100 us buckets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import Counter
from typing import Any

HTTP_BUCKET = 1e5  # buckets per second (10 us)
SSE_BUCKET = 1e4  # 100 us
MAX_WORKER_SECS = 900.0  # hard bound on any worker's life


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# -- HTTP --------------------------------------------------------------------

class RawHttpClient(asyncio.Protocol):
    """A minimal keep-alive HTTP/1.1 GET client (Content-Length bodies only), for
    checking whether the aiohttp client is the bottleneck of the load generator."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.need = -1
        self.status = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionResetError("connection lost"))
        if not self.closed.done():
            self.closed.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.need < 0:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            self.status = int(head[9:12])
            length = 0
            for line in head.split("\r\n")[1:]:
                if line[:15].lower() == "content-length:":
                    length = int(line[15:])
            self.need = end + 4 + length
        if len(self.buf) >= self.need:
            del self.buf[:self.need]
            self.need = -1
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(self.status)

    async def get(self) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(self.request)
        return await self.waiter


async def http_load(url: str, headers: dict[str, str], connections: int, start_at: float,
                    duration: float, client: str) -> dict[str, Any]:
    import aiohttp
    from yarl import URL

    loop = asyncio.get_running_loop()
    # wall clock -> perf_counter, so every worker uses the same window
    offset = time.perf_counter() - time.time()
    t_start = start_at + offset
    t_end = t_start + duration
    hist: Counter[int] = Counter()
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    done = 0
    warm = 0
    cpu: dict[str, float] = {}
    now_perf = time.perf_counter()
    loop.call_later(max(0.0, t_start - now_perf), lambda: cpu.__setitem__("start", time.process_time()))
    loop.call_later(max(0.0, t_end - now_perf), lambda: cpu.__setitem__("end", time.process_time()))

    def record(t0: float, t1: float, status: int | None, err: str | None) -> None:
        nonlocal done, warm
        if t1 < t_start:
            warm += 1
            return
        if t1 > t_end:
            return
        if err is not None:
            errors[err] += 1
            return
        statuses[str(status)] += 1
        if status != 200:
            errors[f"HTTP {status}"] += 1
            return
        done += 1
        hist[int((t1 - t0) * HTTP_BUCKET)] += 1

    async def backoff_if_error(err: str | None) -> None:
        if err is not None:
            await asyncio.sleep(0.01)  # do not spin on a refused connection

    if client == "raw":
        u = URL(url)
        host, port = u.host or "127.0.0.1", u.port or 80
        target = u.raw_path_qs
        lines = [f"GET {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive",
                 "Accept: */*"] + [f"{k}: {v}" for k, v in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()

        async def worker() -> None:
            proto: RawHttpClient | None = None
            while time.perf_counter() < t_end:
                err = None
                status = None
                t0 = time.perf_counter()
                try:
                    if proto is None or proto.transport is None or proto.transport.is_closing():
                        _, proto = await loop.create_connection(lambda: RawHttpClient(request),
                                                                host, port)
                    status = await asyncio.wait_for(proto.get(), 10.0)
                except Exception as exc:
                    err = type(exc).__name__
                    if proto is not None and proto.transport is not None:
                        proto.transport.close()
                    proto = None
                record(t0, time.perf_counter(), status, err)
                await backoff_if_error(err)
            if proto is not None and proto.transport is not None:
                proto.transport.close()

        await asyncio.gather(*(worker() for _ in range(connections)))
    else:
        connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
        timeout = aiohttp.ClientTimeout(total=10.0)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
            async def worker() -> None:
                while time.perf_counter() < t_end:
                    err = None
                    status = None
                    t0 = time.perf_counter()
                    try:
                        async with session.get(url) as resp:
                            await resp.read()
                            status = resp.status
                    except Exception as exc:
                        err = type(exc).__name__
                    record(t0, time.perf_counter(), status, err)
                    await backoff_if_error(err)

            await asyncio.gather(*(worker() for _ in range(connections)))
    cpu_s = cpu.get("end", time.process_time()) - cpu.get("start", 0.0)
    return {"ok": done, "warmup_requests": warm, "duration": duration, "cpu_s": cpu_s, "statuses": dict(statuses),
            "errors": dict(errors), "hist": {str(k): v for k, v in hist.items()}}


# -- SSE ---------------------------------------------------------------------

SENT_RE = re.compile(rb'"sent_at":([0-9.eE+-]+)')


class SseStats:
    def __init__(self) -> None:
        self.reset(time.process_time())

    def reset(self, cpu_mark: float) -> None:
        self.received = 0
        self.hist: Counter[int] = Counter()
        self.first: float | None = None
        self.last: float | None = None
        self.chunks = 0
        self.cpu_mark = cpu_mark


class SseClient:
    __slots__ = ("last_id", "received", "ended", "error", "buf")

    def __init__(self) -> None:
        self.last_id = 0
        self.received = 0
        self.ended = False
        self.error: str | None = None
        self.buf = b""


async def sse_run(url: str, token: str, n: int, connect_timeout: float) -> None:
    import aiohttp

    loop = asyncio.get_running_loop()
    stats = SseStats()
    clients = [SseClient() for _ in range(n)]
    opened = 0
    all_open = asyncio.Event()
    progress = asyncio.Event()
    gate = asyncio.Semaphore(64)  # do not flood the listen backlog
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, connect=30.0, sock_read=None)
    session = aiohttp.ClientSession(connector=connector, timeout=timeout,
                                    headers={"Authorization": f"Bearer {token}",
                                             "Accept": "text/event-stream"})

    def consume(c: SseClient, chunk: bytes) -> None:
        buf = c.buf + chunk
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            c.buf = buf
            return
        part, c.buf = buf[:cut + 2], buf[cut + 2:]
        events = part.count(b"\ndata: ")
        if not events:
            return
        now = time.time()
        stats.chunks += 1
        stats.received += events
        c.received += events
        if stats.first is None:
            stats.first = now
        stats.last = now
        for raw, count in Counter(SENT_RE.findall(part)).items():
            stats.hist[int((now - float(raw)) * SSE_BUCKET)] += count
        i = part.rfind(b"id: ")
        if i >= 0:
            j = part.find(b"\n", i)
            c.last_id = int(part[i + 4:j])
        progress.set()

    async def client(c: SseClient) -> None:
        nonlocal opened
        try:
            async with gate:
                resp = await session.get(url)
                if resp.status != 200:
                    c.error = f"HTTP {resp.status}"
                    resp.release()
                    return
                first = await resp.content.readany()  # "retry: ..." -- the stream is live
                consume(c, first)
            opened += 1
            if opened == n:
                all_open.set()
            async for chunk in resp.content.iter_any():
                consume(c, chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            c.error = type(exc).__name__
        finally:
            c.ended = True
            progress.set()

    tasks = [loop.create_task(client(c)) for c in clients]
    try:
        await asyncio.wait_for(all_open.wait(), connect_timeout)
    except TimeoutError:
        pass
    errors = Counter(c.error for c in clients if c.error)
    emit({"connected": opened, "failed": n - opened, "errors": dict(errors)})

    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            break
        parts = line.decode().split()
        if not parts or parts[0] != "round":
            break  # "quit" or anything unknown
        target, wait_secs = int(parts[1]), float(parts[2])
        deadline = time.monotonic() + wait_secs
        caught_up = False
        while True:
            if all(c.ended or c.last_id >= target for c in clients):
                caught_up = True
                break
            if time.monotonic() >= deadline:
                break
            progress.clear()
            try:
                await asyncio.wait_for(progress.wait(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                break
        cpu = time.process_time()
        per_client = [c.received for c in clients]
        emit({
            "received": stats.received, "chunks": stats.chunks, "first": stats.first, "last": stats.last,
            "cpu_s": cpu - stats.cpu_mark, "all_caught_up": caught_up,
            "alive": sum(1 for c in clients if not c.ended),
            "lagging": sum(1 for c in clients if not c.ended and c.last_id < target),
            "ended": sum(1 for c in clients if c.ended),
            "errors": dict(Counter(c.error for c in clients if c.error)),
            "min_per_client": min(per_client) if per_client else 0,
            "max_per_client": max(per_client) if per_client else 0,
            "hist": {str(k): v for k, v in stats.hist.items()},
        })
        stats.reset(cpu)
        for c in clients:
            c.received = 0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()


# -- entry -------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.workers")
    sub = ap.add_subparsers(dest="kind", required=True)
    h = sub.add_parser("http")
    h.add_argument("--url", required=True)
    h.add_argument("--connections", type=int, default=64)
    h.add_argument("--start-at", type=float, required=True)
    h.add_argument("--duration", type=float, required=True)
    h.add_argument("--header", action="append", default=[])
    h.add_argument("--client", choices=("aiohttp", "raw"), default="aiohttp")
    s = sub.add_parser("sse")
    s.add_argument("--url", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--clients", type=int, required=True)
    s.add_argument("--connect-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)

    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))

    if args.kind == "http":
        headers = dict(h.split(":", 1) for h in args.header)
        headers = {k.strip(): v.strip() for k, v in headers.items()}
        bound = max(0.0, args.start_at - time.time()) + args.duration + 30.0
        result = asyncio.run(asyncio.wait_for(
            http_load(args.url, headers, args.connections, args.start_at, args.duration, args.client),
            bound))
        emit(result)
    else:
        asyncio.run(asyncio.wait_for(sse_run(args.url, args.token, args.clients, args.connect_timeout),
                                     MAX_WORKER_SECS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
