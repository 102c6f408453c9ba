"""`make bench-night`: three nights of the nightly job, step by step, beside their floors.

Nights, each `python -m nightly` in its own process against one dev API on loopback:
- first: day 0 into an empty data folder (its `training` step trains the first model);
- typical: day 1, the next day of the API;
- quiet: day 1 again, so nothing changed.
Each night's step times come from its run record (the ledger); its peak memory is the largest
resident set of the job's process tree (sampled every 0.2 s from /proc), overall and per step.

Floors, measured in the same run:
- extraction: every page of the night fetched by 4 threads, nothing kept (as `make bench`);
- dbt: the SQL dbt compiled for the models it built that night (run_results.json), run as one
  DuckDB script (tables and views, no tests) on a copy of the night's warehouse whose
  incremental models are set back to the previous night's rows (the increment is computed
  and written as dbt's strategy writes it), so dbt's own cost (process start, parse, tests,
  hooks) is a ratio.

`--baseline DIR` runs another checkout's job (its own .venv) beside ours on the same API, night
by night: today's code, b6c1d77. When DIR does not exist the bench makes it a git worktree of
`--baseline-commit` and installs it (`make install`). Writes the JSON result and the Markdown
table (`--out`, default benchmarks/results/night_bench_<users>.{json,md}).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from benchmarks.extract_bench import fetch_floor
from core.dbt import REPO_ROOT
from core.paths import Paths
from dev_api.server import start_api_process

NIGHTS = (("first", 0), ("typical", 1), ("quiet", 1))
STEPS = ("extract", "load", "privacy", "dbt_build", "checks", "training", "scoring", "publish")
SAMPLE_SECONDS = 0.2
BASELINE_COMMIT = "b6c1d77"
# the settings a contender must not inherit from whoever runs the bench
FOREIGN_ENVIRONMENT = ("MOOVITAMIX_", "NIGHTLY__", "DBT_", "VIRTUAL_ENV", "PYTHONPATH")


@dataclass
class Night:
    code: str  # ours, today
    night: str
    day: int
    seconds: float
    exit_code: int
    steps: dict[str, float]
    peak_mb: float
    step_peak_mb: dict[str, float]
    fetch_floor_seconds: float = 0.0
    dbt_floor_seconds: float | None = None
    models_built: int | None = None
    models_skipped: int | None = None

    def after_extraction(self, *, training: bool = True) -> float:
        """Seconds of the steps after extraction, the training step left out if asked."""
        return sum(
            seconds
            for step, seconds in self.steps.items()
            if step != "extract" and (training or step != "training")
        )


@dataclass
class Result:
    users: int
    tracks: int
    started_at: str
    nights: list[Night] = field(default_factory=list)


def tree_rss_mb(root: int) -> float:
    """The resident memory of `root` and its descendants, from /proc (MB)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            parents[int(entry)] = int(fields[1])
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    tree, todo = {root}, [root]
    while todo:
        parent = todo.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                todo.append(pid)
    return sum(rss.get(pid, 0) for pid in tree) / 2**20


def run_night(
    python: Path, checkout: Path, data_dir: Path, api_url: str, log: Path
) -> tuple[int, list[tuple[float, float]]]:
    """`python -m nightly` of `checkout` into `data_dir`; exit code and (time, RSS MB) samples."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENVIRONMENT)}
    environment |= {"MOOVITAMIX_DATA_DIR": str(data_dir), "MOOVITAMIX_API_URL": api_url}
    samples: list[tuple[float, float]] = []
    with log.open("a") as output:
        child = subprocess.Popen(
            [str(python), "-m", "nightly"],
            cwd=checkout,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        done = threading.Event()

        def sample() -> None:
            while not done.wait(SAMPLE_SECONDS):
                samples.append((time.time(), tree_rss_mb(child.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        exit_code = child.wait()
        done.set()
        sampler.join()
    return exit_code, samples


def last_record(data_dir: Path) -> dict:
    records = sorted((data_dir / "runs").glob("*.json"))
    return json.loads(records[-1].read_text())


def measure_night(
    code: str,
    checkout: Path,
    data_dir: Path,
    night: str,
    day: int,
    api_url: str,
    workdir: Path,
) -> Night:
    python = checkout / ".venv" / "bin" / "python"
    exit_code, samples = run_night(python, checkout, data_dir, api_url, workdir / f"{code}.log")
    record = last_record(data_dir)
    steps = {timing["step"]: timing["seconds"] for timing in record["steps"]}
    step_peaks = {}
    for timing in record["steps"]:
        start = datetime.fromisoformat(timing["started_at"]).timestamp()
        inside = [rss for at, rss in samples if start <= at <= start + timing["seconds"]]
        step_peaks[timing["step"]] = round(max(inside, default=0.0), 1)
    nodes = [n for n in record.get("nodes", []) if n["unique_id"].startswith("model.")]
    finished = datetime.fromisoformat(record["finished_at"]).timestamp()
    begun = datetime.fromisoformat(record["started_at"]).timestamp()
    return Night(
        code=code,
        night=night,
        day=day,
        seconds=round(finished - begun, 2),
        exit_code=exit_code,
        steps=steps,
        peak_mb=round(max((rss for _, rss in samples), default=0.0), 1),
        step_peak_mb=step_peaks,
        models_built=sum(n["status"] == "success" for n in nodes),
        models_skipped=sum(n["status"] == "skipped" for n in nodes),
    )


def dbt_floor(data_dir: Path, workdir: Path, before: Path | None) -> float | None:
    """The models dbt built in the last night, as one DuckDB script on a copy of the warehouse,
    no tests, no dbt: each compiled SELECT makes a table (or a view) beside the real one, and an
    incremental model's increment goes into its table as dbt's strategy puts it (appended, or
    delete+insert on its key), that table first set back to its state before the night from
    `before` (the warehouse as the previous night left it): its compiled SQL reads its own
    rows for the watermark, and the models after it read it."""
    paths = Paths.under(data_dir)
    results_file = paths.dbt_target_dir / "run_results.json"
    manifest_file = paths.dbt_target_dir / "manifest.json"
    if not results_file.exists():
        return None
    manifest = json.loads(manifest_file.read_text())["nodes"]
    results = json.loads(results_file.read_text())["results"]
    copy = workdir / "floor" / paths.warehouse.name  # the compiled SQL names its catalog
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(paths.warehouse, copy)
    try:
        with duckdb.connect(str(copy)) as connection:
            connection.execute("set enable_progress_bar = false")
            statements = []
            if before is not None:
                connection.execute(f"attach '{before}' as before (read_only)")
            for result in results:
                node = manifest.get(result["unique_id"])
                if node and node["resource_type"] == "model" and result["status"] == "success":
                    increment = set_back(connection, node) if before is not None else False
                    statements += floor_statements(node, result["compiled_code"], increment)
            if before is not None:
                connection.execute("detach before")
            started = time.monotonic()
            for statement in statements:
                connection.execute(statement)
            return round(time.monotonic() - started, 2)
    finally:
        copy.unlink()


def set_back(connection: duckdb.DuckDBPyConnection, node: dict) -> bool:
    """Whether `node` is an incremental model the previous night built, its table now set back
    to that night's rows (database `before`): tonight its compiled SQL is an increment."""
    if node["config"]["materialized"] != "incremental":
        return False
    table = f'"{node["schema"]}"."{node["name"]}"'
    existed = connection.execute(
        "select count(*) from duckdb_tables() where database_name = 'before' "
        "and schema_name = ? and table_name = ?",
        [node["schema"], node["name"]],
    ).fetchone()[0]
    if existed:
        connection.execute(f"create or replace table {table} as from before.{table}")
    return bool(existed)


def floor_statements(node: dict, sql: str, increment: bool) -> list[str]:
    """The SQL of one model for the floor: an increment written into its table as dbt's
    strategy writes it, or a table (or view) made beside the real one."""
    table = f'"{node["schema"]}"."{node["name"]}"'
    if increment:
        if node["config"].get("incremental_strategy") == "append":
            return [f"insert into {table} by name {sql}"]
        key = node["config"]["unique_key"]
        return [
            f"create or replace temp table increment as {sql}",
            f"delete from {table} where {key} in (select {key} from increment)",
            f"insert into {table} by name from increment",
        ]
    kind = "view" if node["config"]["materialized"] == "view" else "table"
    return [f'create or replace {kind} "{node["schema"]}"."{node["name"]}__floor" as {sql}']


def ensure_baseline(checkout: Path, commit: str) -> Path:
    """A checkout of `commit` with its .venv: made (git worktree, make install) when missing."""
    if not checkout.exists():
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(checkout), commit], cwd=REPO_ROOT, check=True
        )
    if not (checkout / ".venv" / "bin" / "python").exists():
        subprocess.run(["make", "install"], cwd=checkout, check=True)
    return checkout


def table(result: Result) -> str:
    """The Markdown table: each night's steps, total, peak memory, floors and ratios."""
    header = ["code", "night", *STEPS, "total", "peak MB", "fetch floor", "dbt floor"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for n in result.nights:
        cells = [n.code, n.night]
        cells += [f"{n.steps[s]:.1f} s" if s in n.steps else "-" for s in STEPS]
        cells += [f"{n.seconds:.1f} s", f"{n.peak_mb:,.0f}"]
        extract, dbt = n.steps.get("extract", 0), n.steps.get("dbt_build", 0)
        cells.append(
            f"{n.fetch_floor_seconds:.1f} s (extract {extract / n.fetch_floor_seconds:.2f}x)"
            if n.fetch_floor_seconds
            else "-"
        )
        cells.append(
            f"{n.dbt_floor_seconds:.1f} s (dbt {dbt / n.dbt_floor_seconds:.1f}x)"
            if n.dbt_floor_seconds
            else "-"
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for code in dict.fromkeys(n.code for n in result.nights):
        nights = {n.night: n for n in result.nights if n.code == code}
        first = nights["first"]
        untrained = first.after_extraction(training=False)
        for night in ("typical", "quiet"):
            if night in nights:
                tonight = nights[night].after_extraction()
                share = f"{tonight / first.after_extraction():.0%} of the first night's"
                if "training" in first.steps:  # issue 10's measure: the bootstrap training out
                    share = (
                        f"{tonight / untrained:.0%} of the first night's, its bootstrap training "
                        f"left out ({tonight:.1f} s against {untrained:.1f} s); {share} with it"
                    )
                else:  # a checkout from before the training step
                    share += " (its training inside its scoring step, not on record apart)"
                lines.append(f"- {code}, {night} night's steps after extraction: {share}")
    codes = {n.code for n in result.nights}
    if {"ours", "today"} <= codes:
        for night in ("first", "typical", "quiet"):
            ours = next(n for n in result.nights if n.code == "ours" and n.night == night)
            today = next(n for n in result.nights if n.code == "today" and n.night == night)
            lines.append(
                f"- {night} night, ours / today's code: {ours.seconds / today.seconds:.0%} "
                f"({ours.seconds:.1f} s vs {today.seconds:.1f} s)"
            )
    lines.append(
        "- per-step peak memory (MB): "
        + "; ".join(
            f"{n.code} {n.night}: "
            + ", ".join(f"{s} {mb:,.0f}" for s, mb in n.step_peak_mb.items())
            for n in result.nights
        )
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--listens", type=int, default=20)
    parser.add_argument("--large", action="store_true", help="1,000,000 users and 100,000 tracks")
    parser.add_argument("--baseline", type=Path, help="a checkout of today's code to run beside")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT)
    parser.add_argument("--out", type=Path, help="result path without suffix")
    parser.add_argument("--keep", type=Path, help="keep the data folders here (default: removed)")
    args = parser.parse_args()
    if args.large:
        args.users, args.tracks = 1_000_000, 100_000
    contenders = {"ours": REPO_ROOT}
    if args.baseline:
        contenders["today"] = ensure_baseline(args.baseline.resolve(), args.baseline_commit)
    out = args.out or REPO_ROOT / "benchmarks" / "results" / f"night_bench_{args.users}"
    result = Result(args.users, args.tracks, datetime.now().isoformat(timespec="seconds"))
    with tempfile.TemporaryDirectory(prefix="moovitamix-nights-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        data_dirs = {code: workdir / code for code in contenders}
        before: Path | None = None  # our warehouse as the last night left it
        for night, day in NIGHTS:
            process, url = start_api_process(
                users=args.users, tracks=args.tracks, listens=args.listens, day=day,
                cache_pages=True,
            )  # fmt: skip
            try:
                fetch_floor(url, workdir)  # renders and caches the day's pages, unmeasured
                started = time.monotonic()
                fetch_floor(url, workdir)
                floor = round(time.monotonic() - started, 2)
                for code, checkout in contenders.items():
                    print(f"{code}: {night} night (day {day}) ...", flush=True)
                    measured = measure_night(
                        code, checkout, data_dirs[code], night, day, url, workdir
                    )
                    measured.fetch_floor_seconds = floor
                    if code == "ours":
                        if measured.models_built:  # else no run_results tonight
                            measured.dbt_floor_seconds = dbt_floor(data_dirs[code], workdir, before)
                        before = workdir / "before.duckdb"  # for the next night's floor
                        shutil.copyfile(Paths.under(data_dirs[code]).warehouse, before)
                    result.nights.append(measured)
                    print(f"  {measured}", flush=True)
            finally:
                process.terminate()
                process.wait()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(asdict(result), indent=1))
    markdown = (
        f"`make bench-night` at {args.users:,} users, {args.tracks:,} tracks "
        f"({result.started_at}, {os.cpu_count()} cores, shared):\n\n{table(result)}\n"
    )
    out.with_suffix(".md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    sys.exit(main())
