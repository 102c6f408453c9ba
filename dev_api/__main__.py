"""CLI: `python -m dev_api [--port 0] [--users N] ... [--fault SPEC ...]`, until SIGTERM/SIGINT.

Prints exactly one line, "MooVitamix dev API listening on http://127.0.0.1:PORT", once it serves.
With `--exit-with-parent PID` (what `start_api_process` passes) it also stops when that process
is gone, however it died (SIGKILL included), so an embedded dev API never outlives its job.
"""

import argparse
import os
import signal
import threading

from dev_api.faults import FaultPlan
from dev_api.server import LISTENING_BANNER, DevApiServer
from dev_api.world import World

PARENT_POLL_SECONDS = 0.2


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dev_api", description="Local fake of the MooVitamix API."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="a loopback address (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="0 picks a free port (default: %(default)s)"
    )
    parser.add_argument(
        "--users", type=int, default=1000, help="users on day 0 (default: %(default)s)"
    )
    parser.add_argument(
        "--tracks", type=int, default=1000, help="tracks on day 0 (default: %(default)s)"
    )
    parser.add_argument(
        "--listens", type=int, default=20, help="listens per user on day 0 (default: %(default)s)"
    )
    parser.add_argument(
        "--day",
        type=int,
        default=0,
        help="simulated day: 2026-01-01 + DAY days (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=42, help="data set seed (default: %(default)s)")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="ENDPOINT:PAGE:KIND[:ARG][xTIMES], e.g. users:3:status:503x2 or '*:*:drop'; "
        "repeatable. ENDPOINT and PAGE accept '*'. Without xTIMES a fixed page fails once "
        "and random pages fail forever; x-1 = forever",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.1,
        help="share of requests hit by '*'-page faults (default: %(default)s)",
    )
    parser.add_argument(
        "--exit-with-parent",
        type=int,
        metavar="PID",
        help="stop when process PID (the parent that started this one) is gone",
    )
    parser.add_argument("--log-requests", action="store_true", help="log each request to stderr")
    parser.add_argument(
        "--cache-pages",
        action="store_true",
        help="benchmarks only: keep rendered pages in memory so clients are measured, not the API",
    )
    arguments = parser.parse_args(argv)
    try:
        arguments.world = World(
            arguments.seed, arguments.users, arguments.tracks, arguments.listens, arguments.day
        )
        arguments.faults = FaultPlan.from_specs(
            arguments.fault, arguments.fault_rate, arguments.seed
        )
    except ValueError as error:
        parser.error(str(error))
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    try:
        server = DevApiServer(
            arguments.world,
            arguments.faults,
            arguments.port,
            arguments.host,
            arguments.log_requests,
            arguments.cache_pages,
        )
    except (ValueError, OSError) as error:  # a non-loopback host, a port in use
        raise SystemExit(f"python -m dev_api: {error}") from error
    stop = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: stop.set())
    if arguments.exit_with_parent is not None:
        threading.Thread(
            target=_stop_when_orphaned,
            args=(arguments.exit_with_parent, stop),
            name="parent-watch",
            daemon=True,
        ).start()
    server.start()
    print(f"{LISTENING_BANNER}{server.url}", flush=True)
    stop.wait()
    server.stop()
    return 0


def _stop_when_orphaned(parent: int, stop: threading.Event) -> None:
    """Set `stop` once `parent` is no longer our parent (it died and we were re-parented)."""
    while not stop.wait(PARENT_POLL_SECONDS):
        if os.getppid() != parent:
            stop.set()


if __name__ == "__main__":
    raise SystemExit(main())
