"""`make bench-serve`: the serving API at 100,000 users beside the framework floor, in one run.

One published file is built with the nightly job from a dev API of `--users` users (or reused
with `--data-dir`). The API runs under uvicorn in a process of its own (so its memory is its
own), with one more route, `/floor`, answering a constant body of a real response's size from
the same app: the framework's floor. `wrk` (Debian package `wrk`) sends requests to random
users and tracks at 1, 16 and 64 concurrent connections for each endpoint in turn.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import requests

from dev_api.server import start_api_process
from serve.nights import Nights

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_IDS = 20_000  # random users / tracks the load generator draws from

WRK_SCRIPT = """
local ids = {%(ids)s}
local path = "%(path)s"
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", (path:gsub("{id}", ids[math.random(#ids)])))
end
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %%d, "seconds": %%f, "p50_us": %%d, "p99_us": %%d, "errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    errors.connect + errors.read + errors.write + errors.status + errors.timeout))
end
"""


def build_published_file(data_dir: Path, users: int, tracks: int, listens: int) -> None:
    """One night of the nightly job against a dev API of that size."""
    process, url = start_api_process(users=users, tracks=tracks, listens=listens, day=0)
    try:
        environment = {**os.environ, "MOOVITAMIX_DATA_DIR": str(data_dir)}
        environment |= {"MOOVITAMIX_API_URL": url}
        environment.pop("MOOVITAMIX_ANALYTICS_PATH", None)
        environment.pop("MOOVITAMIX_DUCKDB_PATH", None)
        completed = subprocess.run(
            [sys.executable, "-m", "nightly"],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"the nightly job failed:\n{completed.stderr[-3000:]}")
    finally:
        process.terminate()
        process.wait(timeout=10)


def serve(path: Path, port: int, floor_body: bytes) -> None:
    """The production app plus `/floor`, under uvicorn (no access log), until terminated."""
    import uvicorn
    from fastapi import Response

    from serve.app import create_app
    from serve.settings import ServeSettings

    app = create_app(ServeSettings(analytics_path=path))

    @app.get("/floor")
    async def floor() -> Response:
        return Response(floor_body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def memory_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process, in MB."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024)


def run_wrk(url: str, path: str, ids: list[int], clients: int, seconds: int, work: Path) -> dict:
    script = work / "load.lua"
    script.write_text(WRK_SCRIPT % {"ids": ",".join(map(str, ids)), "path": path, "seed": clients})
    completed = subprocess.run(
        ["wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_bench")
    parser.add_argument("--users", type=int, default=100_000, help="default: %(default)s")
    parser.add_argument("--tracks", type=int, default=10_000, help="default: %(default)s")
    parser.add_argument("--listens", type=int, default=20, help="default: %(default)s")
    parser.add_argument("--seconds", type=int, default=10, help="per measurement")
    parser.add_argument("--clients", default="1,16,64", help="concurrent connections")
    parser.add_argument("--data-dir", type=Path, help="reuse a data folder a run published")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor-body", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.floor_body.read_bytes())
        return 0
    with tempfile.TemporaryDirectory(prefix="moovitamix-serve-bench-") as temporary:
        work = Path(temporary)
        data_dir = args.data_dir or work / "data"
        published = data_dir / "analytics.duckdb"
        if not published.exists():
            started = time.monotonic()
            print(f"Building a published file at {args.users:,} users...", flush=True)
            build_published_file(data_dir, args.users, args.tracks, args.listens)
            print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
        return bench(published, work, args)


ENDPOINTS = (
    ("floor (constant body, same app)", "/floor?user={id}", "users"),
    ("GET /users/{id}/recommendations", "/users/{id}/recommendations?limit=10", "users"),
    ("GET /tracks/{id}/similar", "/tracks/{id}/similar?limit=10", "tracks"),
)


def bench(published: Path, work: Path, args: argparse.Namespace) -> int:
    with duckdb.connect(str(published), read_only=True) as connection:
        ids = {
            "users": connection.execute("select user_id from marts.dim_users").fetchall(),
            "tracks": connection.execute("select track_id from marts.dim_tracks").fetchall(),
        }
    rng = random.Random(42)
    samples = {
        kind: [i for (i,) in rng.sample(rows, min(SAMPLE_IDS, len(rows)))]
        for kind, rows in ids.items()
    }
    nights = Nights(published)
    nights.check()  # the floor answers a real response's bytes
    assert nights.current is not None
    body = nights.current.user_recommendations(samples["users"][0], 10)
    assert body is not None
    (work / "floor.json").write_bytes(body.model_dump_json().encode())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "benchmarks.serve_bench", "--serve", str(published)),
            *("--port", str(port), "--floor-body", str(work / "floor.json")),
        ],
        cwd=REPO_ROOT,
    )
    try:
        _wait_until_up(url)
        print(
            f"Serving {published} ({published.stat().st_size / 1e6:.0f} MB, "
            f"{len(ids['users']):,} users, {len(ids['tracks']):,} tracks); "
            f"wrk, 1 thread, {args.seconds} s per row",
            flush=True,
        )
        print(
            "| endpoint | clients | requests/s | p50 ms | p99 ms | errors | x floor rps "
            "| server RSS MB |\n| --- | --- | --- | --- | --- | --- | --- | --- |",
            flush=True,
        )
        floor_rps: dict[int, float] = {}
        for clients in (int(c) for c in args.clients.split(",")):
            for name, path, kind in ENDPOINTS:
                result = run_wrk(url, path, samples[kind], clients, args.seconds, work)
                floor_rps.setdefault(clients, result["rps"])
                rss, _ = memory_mb(server.pid)
                print(
                    f"| {name} | {clients} | {result['rps']:,.0f} | "
                    f"{result['p50_us'] / 1000:.2f} | {result['p99_us'] / 1000:.2f} | "
                    f"{result['errors']} | {result['rps'] / floor_rps[clients]:.2f} | {rss:.0f} |",
                    flush=True,
                )
        _, peak = memory_mb(server.pid)
        print(f"Server peak RSS {peak:.0f} MB", flush=True)
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/health", timeout=1)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
