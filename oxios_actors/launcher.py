"""The dedicated launcher process: starts the Thespian admin and the Kernel.

It is a fresh interpreter with nothing open, so what the admin and the actors
inherit when Thespian forks them is clean (DESIGN rule 8).  It prints one JSON
line when the Kernel has booted every service, then waits.  It stops the whole
actor system when it gets SIGTERM/SIGINT *or* when its stdin closes (the
parent died), and sweeps anything left in the admin's process group.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import threading
import time

import psutil

ADMIN_LOG = "actors.log"


def port_in_use(host: str, port: int) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def log_defs(logdir: str) -> dict:
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "formatter": "plain",
                              "filename": os.path.join(logdir, ADMIN_LOG), "level": "INFO"}},
        "root": {"handlers": ["file"], "level": "INFO"},
    }


def sweep(pgid: int, grace: float = 3.0) -> int:
    """Kill whatever is still in the admin's process group.

    ``killpg`` reaches every member at once, including a process forked a moment
    ago (a supervisor restarting a child that just died), which a list of pids
    taken first would miss; it is repeated until the group is empty."""
    def members() -> list[int]:
        out = []
        for p in psutil.process_iter(["pid", "status"]):
            try:
                if (p.info["status"] != psutil.STATUS_ZOMBIE and p.pid != os.getpid()
                        and os.getpgid(p.pid) == pgid):
                    out.append(p.pid)
            except (ProcessLookupError, psutil.Error):
                pass
        return out

    found = len(members())
    deadline = time.monotonic() + max(grace, 1.0)
    while members() and time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.05)
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="oxios-launcher")
    ap.add_argument("--home", required=True)
    ap.add_argument("--actor-port", type=int, required=True)
    ap.add_argument("--bind", default="127.0.0.1")
    args = ap.parse_args(argv)

    from . import netguard
    netguard.install(args.bind)
    logdir = os.path.join(args.home, "logs")
    os.makedirs(logdir, exist_ok=True)
    os.environ.setdefault("THESPLOG_FILE", os.path.join(logdir, "thespian.log"))
    os.environ.setdefault("THESPLOG_THRESHOLD", "WARNING")

    if port_in_use(args.bind, args.actor_port):
        print(json.dumps({"ready": False,
                          "error": f"actor port {args.actor_port} is in use on {args.bind}"}), flush=True)
        return 2

    from thespian.actors import ActorSystem

    from .kernel import KERNEL_NAME, Boot, Booted

    caps = {"Admin Port": args.actor_port, "oxios.home": True, "Process Startup Method": "fork"}
    asys = ActorSystem("multiprocTCPBase", capabilities=caps, logDefs=log_defs(logdir),
                       transientUnique=True)
    pgid = None
    stop = threading.Event()
    try:
        kernel = asys.createActor("oxios_actors.kernel.Kernel", globalName=KERNEL_NAME)
        me = psutil.Process()
        booted = asys.ask(kernel, Boot(os.path.abspath(args.home), me.pid, me.create_time()),
                          timeout=60)
        if not isinstance(booted, Booted):
            print(json.dumps({"ready": False, "error": f"kernel did not boot: {booted!r}"}), flush=True)
            return 1
        pgid = booted.pgid
        print(json.dumps({"ready": True, "kernel_pid": booted.pid, "admin_pgid": pgid,
                          "actor_port": args.actor_port}), flush=True)

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

        stdin = sys.stdin.fileno()
        while not stop.is_set():
            readable, _, _ = select.select([stdin], [], [], 0.5)
            if readable and not os.read(stdin, 4096):
                break  # stdin closed: the process that started us is gone
        return 0
    finally:
        done = threading.Event()

        def shutdown() -> None:
            try:
                asys.shutdown()
            finally:
                done.set()

        threading.Thread(target=shutdown, daemon=True).start()
        done.wait(15)
        if pgid is not None:
            time.sleep(0.1)
            sweep(pgid)


if __name__ == "__main__":
    sys.exit(main())
