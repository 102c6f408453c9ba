"""`make bench`: the extractor beside the fetch floor and a naive loader, on one dev API.

Each contender runs in a process of its own, so its peak memory (`ru_maxrss`) is its own:
- floor: every page of the three endpoints fetched by 4 threads, nothing kept;
- naive: pages fetched one by one, all records held in a list, written to CSV, loaded by DuckDB;
- extractor: `run_extraction` into a fresh DuckDB file; then a second night with no change.
Then raw storage night after night over simulated days, with and without list pruning.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import requests

from dev_api.server import start_api_process
from extract.endpoints import ENDPOINTS
from extract.pipeline import make_pipeline, run_extraction

PAGE_SIZE = 100
WORKERS = 4


def fetch_floor(api_url: str, workdir: Path) -> int:
    """Fetch every page concurrently and keep nothing: what the network and the API allow."""
    local = threading.local()

    def fetch(path_page: tuple[str, int]) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        session = local.session
        path, page = path_page
        response = session.get(f"{api_url}/{path}", params={"page": page, "size": PAGE_SIZE})
        response.raise_for_status()
        return len(response.json()["items"])

    jobs = [(e.name, p) for e in ENDPOINTS for p in range(1, _pages(api_url, e.name) + 1)]
    with ThreadPoolExecutor(WORKERS) as pool:
        return sum(pool.map(fetch, jobs))


def naive_loader(api_url: str, workdir: Path) -> int:
    """The loader one writes first: sequential pages, everything in memory, CSV, DuckDB."""
    rows = 0
    with duckdb.connect(str(workdir / "naive.duckdb")) as connection:
        for endpoint in ENDPOINTS:
            records = []
            for page in range(1, _pages(api_url, endpoint.name) + 1):
                response = requests.get(
                    f"{api_url}/{endpoint.name}", params={"page": page, "size": PAGE_SIZE}
                )
                response.raise_for_status()
                records += response.json()["items"]
            csv_path = workdir / f"{endpoint.name}.csv"
            with csv_path.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(records[0]))
                writer.writeheader()
                writer.writerows(records)
            connection.execute(
                f"create or replace table {endpoint.name} as select * from read_csv(?)",
                [str(csv_path)],
            )
            rows += len(records)
    return rows


def extractor(api_url: str, workdir: Path) -> int:
    """The project's extractor; run twice on one workdir, the second run is a night of no change."""
    pipeline = make_pipeline(workdir / "warehouse.duckdb", workdir / "dlt")
    summary = run_extraction(pipeline, api_url)
    return sum(t.read for t in summary.tables)


CONTENDERS = {"floor": fetch_floor, "naive": naive_loader, "extractor": extractor}


def _pages(api_url: str, path: str) -> int:
    response = requests.get(f"{api_url}/{path}", params={"page": 1, "size": PAGE_SIZE})
    response.raise_for_status()
    return response.json()["pages"]


@dataclass(frozen=True)
class Measurement:
    name: str
    rows: int
    seconds: float
    peak_mb: float

    def row(self, floor_seconds: float) -> str:
        return (
            f"{self.name:<28} {self.seconds:>8.2f} s {self.rows / self.seconds:>12,.0f} rows/s "
            f"{self.peak_mb:>8,.0f} MB {self.seconds / floor_seconds:>6.2f}x floor"
        )


def measure(name: str, contender: str, api_url: str, workdir: Path, repeat: int) -> Measurement:
    """The median of `repeat` runs (each in a fresh workdir), as wall time, rows, peak RSS."""
    runs = []
    for attempt in range(repeat):
        run_dir = workdir / f"{contender}-{attempt}"
        run_dir.mkdir(exist_ok=True)
        runs.append(measure_once(name, contender, api_url, run_dir))
    return sorted(runs, key=lambda run: run.seconds)[len(runs) // 2]


def measure_once(name: str, contender: str, api_url: str, workdir: Path) -> Measurement:
    """Run one contender in a child process: wall time, rows, and the child's peak RSS."""
    started = time.monotonic()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.extract_bench",
            "--child",
            contender,
            api_url,
            str(workdir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    output = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed")
    return Measurement(
        name, json.loads(output.splitlines()[-1])["rows"], seconds, usage.ru_maxrss / 1024
    )


def storage_over_nights(args: argparse.Namespace, workdir: Path) -> None:
    """Raw storage after each simulated night: lists kept once per user vs. once per version."""
    pipeline = make_pipeline(workdir / "nights.duckdb", workdir / "nights-dlt")
    unpruned_elements = 0
    print(f"\nRaw storage over {args.nights} simulated nights ({args.users:,} users)")
    print(
        f"{'night':>5} {'file MB':>9} {'list ids kept':>14} {'ids without pruning':>20} "
        f"{'versions':>10}"
    )
    for day in range(args.nights + 1):
        process, url = start_api_process(
            users=args.users, tracks=args.tracks, listens=args.listens, day=day
        )
        try:
            summary = run_extraction(pipeline, url)
        finally:
            process.terminate()
            process.wait()
        with duckdb.connect(str(workdir / "nights.duckdb")) as connection:
            connection.execute("checkpoint")
            [(kept, versions, inserted)] = connection.execute(
                "select sum(json_array_length(items)), count(*), "
                "sum(json_array_length(items)) filter (where _dlt_load_id = ?) "
                "from raw.listen_history",
                [summary.load_id],
            ).fetchall()
        unpruned_elements += inserted or 0
        size_mb = (workdir / "nights.duckdb").stat().st_size / 2**20
        print(f"{day:>5} {size_mb:>9.1f} {kept:>14,} {unpruned_elements:>20,} {versions:>10,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--listens", type=int, default=20)
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender (median)")
    parser.add_argument("--child", nargs=3, metavar=("CONTENDER", "URL", "WORKDIR"))
    args = parser.parse_args()
    if args.child:
        contender, url, workdir = args.child
        print(json.dumps({"rows": CONTENDERS[contender](url, Path(workdir))}))
        return

    with tempfile.TemporaryDirectory(prefix="moovitamix-bench-") as tmp:
        workdir = Path(tmp)
        # Pages cached by the API so the clients' own costs are compared, not page generation;
        # the first, unmeasured pass renders them.
        process, url = start_api_process(
            users=args.users, tracks=args.tracks, listens=args.listens, day=0, cache_pages=True
        )
        try:
            measure_once("warm-up (renders pages)", "floor", url, workdir)
            floor = measure("fetch floor (4 threads)", "floor", url, workdir, args.repeat)
            results = [
                floor,
                measure("naive sequential loader", "naive", url, workdir, args.repeat),
                measure("extractor, first night", "extractor", url, workdir, args.repeat),
                # the same workdirs again: each extractor run now finds yesterday's raw tables
                measure("extractor, no-change night", "extractor", url, workdir, args.repeat),
            ]
        finally:
            process.terminate()
            process.wait()
        print(
            f"\nExtract at {args.users:,} users, {args.tracks:,} tracks, "
            f"{args.listens} listens per user ({floor.rows:,} rows)"
        )
        for result in results:
            print(result.row(floor.seconds))
        with duckdb.connect(
            str(workdir / "extractor-0/warehouse.duckdb"), read_only=True
        ) as connection:
            [(written,)] = connection.execute(
                "select count(*) from (select _dlt_load_id from raw.users union all "
                "select _dlt_load_id from raw.tracks union all "
                "select _dlt_load_id from raw.listen_history) "
                "where _dlt_load_id = (select max(load_id) from raw._dlt_loads)"
            ).fetchall()
        print(f"rows written by the no-change night: {written}")
        if args.nights:
            storage_over_nights(args, workdir)


if __name__ == "__main__":
    main()
