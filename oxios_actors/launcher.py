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
    ap.add_argument("--bind", default="127.0.0.1", help="the one address every actor socket binds to")
    ap.add_argument("--allow", default="", help="comma-separated member addresses (cluster mode)")
    ap.add_argument("--join", default="", help="HOST:PORT of the home node: start a worker node")
    ap.add_argument("--capability", action="append", default=[], help="worker capability (repeatable)")
    ap.add_argument("--node-name", default="")
    ap.add_argument("--reregistration-secs", type=int, default=2)
    args = ap.parse_args(argv)

    # Node loss is detected by the home node's own heartbeats to each worker (see
    # AgentSupervisor); Thespian's convention keeps its default re-registration period,
    # because its members do not re-register at short periods (measured: a member
    # registered once was dropped by the leader after PERIOD x MISS_MAX even though it
    # was alive), and a dropped member could no longer host actors.

    from . import netguard
    allowed = [a.strip() for a in args.allow.split(",") if a.strip()] or None
    if args.join and allowed is not None:
        allowed.append(args.join.rpartition(":")[0])
    netguard.install(args.bind, allowed)
    logdir = os.path.join(args.home, "logs")
    os.makedirs(logdir, exist_ok=True)
    os.environ.setdefault("THESPLOG_FILE", os.path.join(logdir, "thespian.log"))
    os.environ.setdefault("THESPLOG_THRESHOLD", "WARNING")
    # Thespian holds at most 20 unfinished sends per actor and queues the rest for up to
    # 5 minutes: one unresponsive recipient could silence a busy supervisor (measured: 40 s
    # without an answer).  Allow more in flight and give up on a dead peer sooner.
    os.environ.setdefault("THESPIAN_MAX_PENDING_TRANSMITS", "500")
    os.environ.setdefault("THESPIAN_TRANSMIT_TIMEOUT_PERIOD", "0:30")

    if port_in_use(args.bind, args.actor_port):
        print(json.dumps({"ready": False,
                          "error": f"actor port {args.actor_port} is in use on {args.bind}"}), flush=True)
        return 2

    from thespian.actors import ActorSystem

    node = args.node_name or ("worker-" + socket.gethostname() + f"-{args.actor_port}" if args.join else "home")
    caps: dict[str, object] = {"Admin Port": args.actor_port, "Process Startup Method": "fork",
                               "oxios.node": node}
    if args.join:
        caps.update({"oxios.worker": True, "Convention Address.IPv4": args.join})
        caps.update({c: True for c in args.capability})
        caps["oxios.capabilities"] = ",".join(sorted(args.capability))
    else:
        caps["oxios.home"] = True
    asys = ActorSystem("multiprocTCPBase", capabilities=caps, logDefs=log_defs(logdir),
                       transientUnique=True)
    pgid = None
    stop = threading.Event()
    try:
        me = psutil.Process()
        if args.join:
            from .cluster.node import Warded, Warden
            warden = asys.createActor("oxios_actors.cluster.node.NodeWarden",
                                      targetActorRequirements={"oxios.node": node})
            ready = asys.ask(warden, Warden(me.pid, me.create_time()), timeout=60)
            if not isinstance(ready, Warded):
                print(json.dumps({"ready": False, "error": f"worker node did not start: {ready!r}"}), flush=True)
                return 1
            info = {"ready": True, "node": node, "admin_pgid": ready.pgid, "actor_port": args.actor_port}
        else:
            from .kernel import KERNEL_NAME, Boot, Booted
            kernel = asys.createActor("oxios_actors.kernel.Kernel", globalName=KERNEL_NAME)
            booted = asys.ask(kernel, Boot(os.path.abspath(args.home), me.pid, me.create_time()),
                              timeout=60)
            if not isinstance(booted, Booted):
                print(json.dumps({"ready": False, "error": f"kernel did not boot: {booted!r}"}), flush=True)
                return 1
            info = {"ready": True, "node": node, "kernel_pid": booted.pid, "admin_pgid": booted.pgid,
                    "actor_port": args.actor_port}
        pgid = int(str(info["admin_pgid"]))
        print(json.dumps(info), flush=True)

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
