"""The one way the project runs dbt: a child process from the repository root, results read back.

A child process rather than dbt's in-process runner: dbt-duckdb keeps its connection open in the
process that ran it, which would stop the steps after it (scoring, checks, publish) from opening
the warehouse in any other mode. The child can inherit the run lock's descriptor.

`python -m core.dbt <dbt arguments>` (`make dbt ARGS=...`, `make dbt-build`, `make docs`) runs dbt
the same way on the configured warehouse, under the run lock, with dbt's usual `target/` folder.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core import engine, lock
from core.paths import DataDirError, Paths
from core.privacy import PrivacySettings
from core.warehouse import DuckDBSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILT_KINDS = frozenset({"model", "seed", "snapshot"})
TEST_KINDS = frozenset({"test", "unit_test"})
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})
# a node the nightly job chose not to run (nightly.changes): dbt itself says "skipped" too
SKIPPED = "skipped"
EXIT_LOCKED = 75
# dbt commands that compile models, and so read the project's vars
MODEL_COMMANDS = frozenset({"build", "run", "test", "compile", "show", "docs", "list", "ls"})
EXIT_UNSAFE = 78


@dataclass
class NodeResult:
    """One dbt node's outcome in `run_results.json` (or `sources.json`): model, test, source."""

    unique_id: str
    resource_type: str
    name: str
    status: str
    seconds: float
    failures: int | None
    message: str | None

    def describe(self) -> str:
        return self.message or f"{self.failures} failing rows"


@dataclass(frozen=True)
class DbtRun:
    """What one dbt command did: its arguments, exit code, every node's result, and its output
    (captured when asked, else it went to our stdout)."""

    args: tuple[str, ...]
    returncode: int
    nodes: tuple[NodeResult, ...]
    output: str = ""

    def broken_models(self) -> list[NodeResult]:
        """Models that did not build: the step failed, whatever the tests say."""
        return [n for n in self.nodes if n.resource_type in BUILT_KINDS and n.status == "error"]

    def tests(self, *statuses: str) -> list[NodeResult]:
        return [n for n in self.nodes if n.resource_type in TEST_KINDS and n.status in statuses]

    def failed(self) -> list[NodeResult]:
        """Every node that errored or failed (models, tests, freshness)."""
        return [n for n in self.nodes if n.status in FAILED_STATUSES]

    def statuses(self) -> dict[str, str]:
        """Node name -> status (pass, warn, fail, error, success, skipped...)."""
        return {node.name: node.status for node in self.nodes}

    def render(self) -> str:
        """One line of counts, then one line per failed or warned test."""
        outcomes = Counter(
            ("model" if n.resource_type in BUILT_KINDS else "test", n.status) for n in self.nodes
        )
        failed_tests = self.tests(*FAILED_STATUSES)
        lines = [
            f"dbt {' '.join(self.args[:1])}: {outcomes['model', 'success']} models built "
            f"({outcomes['model', 'error']} errors, {outcomes['model', 'skipped']} skipped); "
            f"tests {outcomes['test', 'pass']} passed, {outcomes['test', 'warn']} warned, "
            f"{len(failed_tests)} failed"
        ]
        lines += [
            f"  {node.status.upper():<5} {node.name}: {node.describe()}"
            for node in self.broken_models() + failed_tests + self.tests("warn")
        ]
        return "\n".join(lines)


def failed_and_warned_tests(nodes: Iterable[NodeResult]) -> tuple[int, int]:
    """How many tests (and unit tests) of a build failed, and how many warned."""
    statuses = [node.status for node in nodes if node.resource_type in TEST_KINDS]
    return sum(status in FAILED_STATUSES for status in statuses), statuses.count("warn")


def run_dbt(
    paths: Paths,
    *args: str,
    target_dir: Path | None = None,
    inherit_fds: tuple[int, ...] = (),
    capture: bool = False,
) -> DbtRun:
    """`dbt <args>` from the repository root against `paths.warehouse`.

    dbt's target and log folders default to the data folder's (`target_dir` gives a command its
    own, e.g. a test's docs build). Output goes to our stdout, or is captured with `capture`.
    """
    target_dir = target_dir or paths.dbt_target_dir
    # `dbt source freshness` writes sources.json; the other commands run_results.json
    results_name = (
        "sources.json" if tuple(args[:2]) == ("source", "freshness") else "run_results.json"
    )
    results_file = target_dir / results_name
    results_file.unlink(missing_ok=True)  # never read a previous command's results
    environment = {
        **os.environ,
        "MOOVITAMIX_DUCKDB_PATH": str(paths.warehouse),
        **DuckDBSettings.from_config().environment(paths.warehouse),  # profiles.yml `settings`
        **engine.dbt_environment(paths),  # the Spark target and its folders, when chosen
        "DBT_PROFILES_DIR": os.environ.get("DBT_PROFILES_DIR", str(REPO_ROOT)),
        "DBT_USE_COLORS": "false",
    }
    sys.stdout.flush()  # what we printed must come before dbt's output in the log
    if args[:1] and args[0] in MODEL_COMMANDS and "--vars" not in args:
        args = (*args, "--vars", json.dumps(model_vars()))
    command = [
        str(Path(sys.executable).with_name("dbt")), *args,
        "--target-path", str(target_dir),
        "--log-path", str(target_dir.with_name("logs")),
    ]  # fmt: skip
    completed = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=environment,
        pass_fds=inherit_fds,
        capture_output=capture,
        text=True,
        check=False,
    )
    nodes = read_results(results_file) if results_file.exists() else ()
    output = (completed.stdout or "") + (completed.stderr or "") if capture else ""
    return DbtRun(tuple(args), completed.returncode, nodes, output)


def model_vars() -> dict[str, object]:
    """The project's settings that models read (declared under `vars:` in dbt_project.yml)."""
    return {"publish_gender": PrivacySettings.from_config().publish_gender}


def read_results(results_file: Path) -> tuple[NodeResult, ...]:
    """Each node of `run_results.json` (or `sources.json`) as a NodeResult."""
    return tuple(
        NodeResult(
            unique_id=result["unique_id"],
            resource_type=result["unique_id"].split(".")[0],
            name=node_name(result["unique_id"]),
            status=result["status"],
            seconds=round(result["execution_time"], 3),
            failures=result.get("failures"),
            message=result.get("message"),
        )
        for result in json.loads(results_file.read_text())["results"]
    )


def node_name(unique_id: str) -> str:
    """The name in a unique id: model.<project>.<name>, test.<project>.<name>.<hash>,
    unit_test.<project>.<model>.<name>, source.<project>.<source>.<table>."""
    kind, _, *rest = unique_id.split(".")
    return {"test": rest[0], "unit_test": rest[-1], "source": ".".join(rest)}.get(kind, rest[-1])


def main(argv: Sequence[str] | None = None) -> int:
    """dbt with the project's settings, under the run lock (exit 75 while a night runs)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    paths = Paths.resolve()
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m core.dbt <dbt command> [arguments]", file=sys.stderr)
        return 2
    try:
        paths.prepare()
        with lock.exclusive(paths.lock_file) as descriptor:
            # dbt's own target folder, where plain `dbt docs serve` looks
            run = run_dbt(paths, *args, target_dir=REPO_ROOT / "target", inherit_fds=(descriptor,))
            return run.returncode
    except lock.LockHeld as exc:
        print(f"dbt: {exc}; try again when it has finished", file=sys.stderr)
        return EXIT_LOCKED
    except DataDirError as exc:
        print(f"dbt: {exc}", file=sys.stderr)
        return EXIT_UNSAFE


if __name__ == "__main__":
    sys.exit(main())
