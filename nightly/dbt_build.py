"""`dbt build` in a child process, and its `run_results.json` read back as node results.

A child process rather than dbt's in-process runner: dbt-duckdb keeps its connection open in the
process that ran it, which would stop the steps after it (the recommender's scoring, the checks,
the publish) from opening the warehouse in any other mode. The child inherits the run lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nightly.ledger import NodeResult

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILT_KINDS = frozenset({"model", "seed", "snapshot"})
TEST_KINDS = frozenset({"test", "unit_test"})
FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


@dataclass(frozen=True)
class DbtBuild:
    """What `dbt build` did: its exit code and every node's result."""

    returncode: int
    nodes: tuple[NodeResult, ...]

    def broken_models(self) -> list[NodeResult]:
        """Models that did not build: the step failed, whatever the tests say."""
        return [n for n in self.nodes if n.resource_type in BUILT_KINDS and n.status == "error"]

    def tests(self, *statuses: str) -> list[NodeResult]:
        return [n for n in self.nodes if n.resource_type in TEST_KINDS and n.status in statuses]

    def render(self) -> str:
        """One line of counts, then one line per failed or warned test."""
        outcomes = Counter(
            ("model" if n.resource_type in BUILT_KINDS else "test", n.status) for n in self.nodes
        )
        failed_tests = self.tests(*FAILED_STATUSES)
        lines = [
            f"dbt build: {outcomes['model', 'success']} models built "
            f"({outcomes['model', 'error']} errors, {outcomes['model', 'skipped']} skipped); "
            f"tests {outcomes['test', 'pass']} passed, {outcomes['test', 'warn']} warned, "
            f"{len(failed_tests)} failed"
        ]
        lines += [
            f"  {node.status.upper():<5} {node.name}: {describe(node)}"
            for node in self.broken_models() + failed_tests + self.tests("warn")
        ]
        return "\n".join(lines)


def failed_and_warned_tests(nodes: Iterable[NodeResult]) -> tuple[int, int]:
    """How many tests (and unit tests) of a build failed, and how many warned."""
    statuses = [node.status for node in nodes if node.resource_type in TEST_KINDS]
    return sum(status in FAILED_STATUSES for status in statuses), statuses.count("warn")


def describe(node: NodeResult) -> str:
    return node.message or f"{node.failures} failing rows"


def run_build(
    duckdb_path: Path, target_dir: Path, log_dir: Path, inherit_fds: tuple[int, ...] = ()
) -> DbtBuild:
    """`dbt build` from the repository root against `duckdb_path`; output goes to our stdout."""
    results_file = target_dir / "run_results.json"
    results_file.unlink(missing_ok=True)  # never read a previous run's results
    environment = {
        **os.environ,
        "MOOVITAMIX_DUCKDB_PATH": str(duckdb_path),
        "DBT_PROFILES_DIR": os.environ.get("DBT_PROFILES_DIR", str(REPO_ROOT)),
        "DBT_USE_COLORS": "false",
    }
    sys.stdout.flush()  # what we printed must come before dbt's output in the log
    command = [
        str(Path(sys.executable).with_name("dbt")), "build",
        "--target-path", str(target_dir), "--log-path", str(log_dir),
    ]  # fmt: skip
    completed = subprocess.run(
        command, cwd=REPO_ROOT, env=environment, pass_fds=inherit_fds, check=False
    )
    nodes = read_results(results_file) if results_file.exists() else ()
    return DbtBuild(completed.returncode, nodes)


def read_results(results_file: Path) -> tuple[NodeResult, ...]:
    """Each node of `run_results.json` as a NodeResult."""
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
    unit_test.<project>.<model>.<name>."""
    kind, _, *rest = unique_id.split(".")
    return {"test": rest[0], "unit_test": rest[-1]}.get(kind, rest[-1])
