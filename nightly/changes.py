"""What tonight's data reaches: the dbt nodes to build, and the analyst tables publish may share.

A model is a function of the raw tables it reads (its sources) and of the dbt project. So each
raw table gets a fingerprint (rows, newest load id, retired versions and when; for `users` the
personal columns still filled and the erasures too, as an erasure rewrites rows in place), and
the fingerprints are kept in the data folder when a build passes (`dbt/built_state.json`) and
when a publish succeeds (`dbt/published_state.json`), with a hash of the dbt project, the vars
it is built with and the engine.

Against the last passing build, a night builds `source:<table>+` for the sources whose
fingerprint moved, nothing when none did, and everything (`dbt build --full-refresh`) when there
is no state, the project or the engine changed, or `NIGHTLY__FULL_REBUILD=true` (`make elt
FULL=1`). On the Spark engine every night is a full build: its lake snapshot holds all of raw,
and selective Spark builds are not done yet. Unit tests (of the SQL, not of the data) run in
full builds only: the project is the same since one.
A source whose readers are views with tests (`quarantined_records`: the warning on tonight's
quarantine) is selected too, for the tests. The one exception is `_dlt_loads` (the loads behind
`as_of_at`), which moves every night: its views are current whenever they are read, and their
tests check tables that did not change. Only a build with no model error and no failed test is
kept as the state, so a bad night is built again the next night.

Against the last publish, an analyst relation is the same as in the published file when
everything it reads kept its fingerprint: a dbt model (a table, or a view, which publish writes
as a table) whose sources all did, and a table of the recommender's `ml` schema, fingerprinted
by its rows' content (rows and a hash of every row: it is written outside dbt, on the nights
scoring re-scores somebody). Publish then keeps such a relation from the published file instead
of re-reading the warehouse. The views that count days to tonight's load read `_dlt_loads`,
which every load moves: they are written again each night.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.dbt import REPO_ROOT, SKIPPED, TEST_KINDS, NodeResult, model_vars
from core.engine import EngineSettings
from core.paths import Paths
from core.warehouse import ML_SCHEMA, RAW_SCHEMA, connect
from extract.endpoints import USER_PERSONAL_COLUMNS
from nightly.privacy import ErasureLog

# what a model's result depends on besides its sources
PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
PROJECT_FOLDER = "dbt_project"
FINGERPRINT_COLUMNS = ("_dlt_load_id", "load_id", "_dlt_valid_to", "inserted_at")
# raw tables that move every night and feed only views whose tests read unchanged tables
TIMESTAMP_SOURCES = frozenset({"_dlt_loads"})


def source_fingerprints(paths: Paths) -> dict[str, list[str]]:
    """Per raw table, what moves when a load adds, changes or retires rows (or an erasure
    rewrites them): row count, newest load id, retired versions and the latest retirement."""
    with connect(paths.warehouse, read_only=True) as connection:
        columns: dict[str, set[str]] = {}
        for table, column in connection.execute(
            "select table_name, column_name from duckdb_columns() "
            "where schema_name = ? and database_name = current_database()",
            [RAW_SCHEMA],
        ).fetchall():
            columns.setdefault(table, set()).add(column)
        fingerprints = {}
        for table, names in sorted(columns.items()):
            measures = ["count(*)"] + [
                f"max({column}), count({column})"
                for column in FINGERPRINT_COLUMNS
                if column in names
            ]
            if table == "users":  # an erasure nulls these in place (even one cut off mid-way)
                measures += [f"count({c})" for c in USER_PERSONAL_COLUMNS if c in names]
            row = connection.execute(
                f'select {", ".join(measures)} from {RAW_SCHEMA}."{table}"'
            ).fetchone()
            fingerprints[table] = [str(value) for value in row]
    fingerprints.setdefault("users", []).append(f"erasures={len(ErasureLog(paths).erasures())}")
    return fingerprints


def ml_fingerprints(paths: Paths) -> dict[str, list[str]]:
    """Per table of the `ml` schema (`ml.<name>`): its rows and a hash of every row's content
    (order-free; half a second for 20,000,000 recommendations)."""
    with connect(paths.warehouse, read_only=True) as connection:
        tables = connection.execute(
            "select table_name from duckdb_tables() "
            "where schema_name = ? and database_name = current_database()",
            [ML_SCHEMA],
        ).fetchall()
        return {
            f"{ML_SCHEMA}.{table}": [
                str(value)
                for value in connection.execute(
                    f'select count(*), bit_xor(hash(t)) from {ML_SCHEMA}."{table}" as t'
                ).fetchone()
            ]
            for (table,) in sorted(tables)
        }


def project_fingerprint() -> str:
    """A hash of every file of the dbt project, its profile, the vars it is built with and the
    engine that builds it."""
    digest = hashlib.sha256(json.dumps(model_vars(), sort_keys=True).encode())
    digest.update(EngineSettings.from_config().engine.encode() + b"\0")
    files = [REPO_ROOT / name for name in PROJECT_FILES]
    files += sorted(p for p in (REPO_ROOT / PROJECT_FOLDER).rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class SourceState:
    """The project hash and the source fingerprints at one moment (a passing build, a publish)."""

    project: str
    sources: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> SourceState | None:
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(data["project"], data["sources"])

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"project": self.project, "sources": self.sources}))
        temporary.replace(path)

    def changed_since(self, earlier: SourceState | None) -> set[str] | None:
        """The raw tables whose fingerprint moved since `earlier`; None: everything may have
        (no earlier state, or another project)."""
        if earlier is None or earlier.project != self.project:
            return None
        tables = set(self.sources) | set(earlier.sources)
        return {t for t in tables if self.sources.get(t) != earlier.sources.get(t)}


def current_state(paths: Paths) -> SourceState:
    """The project and the raw tables as they are now."""
    return SourceState(project_fingerprint(), source_fingerprints(paths))


def publish_state(paths: Paths) -> SourceState:
    """What publish compares with the last publish: the project, the raw tables and the `ml`
    tables as they are now."""
    state = current_state(paths)
    return SourceState(state.project, {**state.sources, **ml_fingerprints(paths)})


def built_state_file(paths: Paths) -> Path:
    return paths.dbt_target_dir.parent / "built_state.json"


def published_state_file(paths: Paths) -> Path:
    return paths.dbt_target_dir.parent / "published_state.json"


class Manifest:
    """The nodes of dbt's manifest.json that selection needs: models, tests, sources, edges."""

    def __init__(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.nodes: dict[str, dict] = data["nodes"]
        self.sources: dict[str, dict] = data["sources"]
        self.children: dict[str, list[str]] = data["child_map"]
        self.parents: dict[str, list[str]] = data["parent_map"]

    def source_of_table(self, table: str) -> str | None:
        """The unique id of the raw-schema source named `table`."""
        return next(
            (
                uid
                for uid, source in self.sources.items()
                if source["schema"] == RAW_SCHEMA and source["identifier"] == table
            ),
            None,
        )

    def descendants(self, unique_id: str) -> set[str]:
        seen, todo = set(), [unique_id]
        while todo:
            for child in self.children.get(todo.pop(), []):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
        return seen

    def upstream_sources(self, unique_id: str) -> set[str]:
        """The sources a node reads, directly or through other models: a raw table by its name,
        another schema's as `schema.name`."""
        seen, todo, tables = set(), [unique_id], set()
        while todo:
            for parent in self.parents.get(todo.pop(), []):
                if parent in seen:
                    continue
                seen.add(parent)
                if parent in self.sources:
                    source = self.sources[parent]
                    schema, name = source["schema"], source["identifier"]
                    tables.add(name if schema == RAW_SCHEMA else f"{schema}.{name}")
                else:
                    todo.append(parent)
        return tables

    def builds_a_table(self, unique_ids: Iterable[str]) -> bool:
        """Whether any of these nodes is a model materialised as more than a view."""
        return any(
            self.nodes[uid]["resource_type"] == "model"
            and self.nodes[uid]["config"]["materialized"] != "view"
            for uid in unique_ids
            if uid in self.nodes
        )

    def runs_a_test(self, unique_ids: Iterable[str]) -> bool:
        """Whether any of these nodes is a data test."""
        return any(
            self.nodes[uid]["resource_type"] == "test" for uid in unique_ids if uid in self.nodes
        )

    def model_relations(self) -> dict[str, str]:
        """`schema.name` of each model -> its unique id."""
        return {
            f"{node['schema']}.{node['alias'] or node['name']}": uid
            for uid, node in self.nodes.items()
            if node["resource_type"] == "model"
        }

    def skipped(self, ran: Iterable[NodeResult], why: str) -> list[NodeResult]:
        """Every model and test that did not run tonight, as a skipped result saying why."""
        done = {node.unique_id for node in ran}
        return [
            NodeResult(uid, node["resource_type"], node["name"], SKIPPED, 0.0, None, why)
            for uid, node in sorted(self.nodes.items())
            if uid not in done
            and (node["resource_type"] == "model" or node["resource_type"] in TEST_KINDS)
        ]


@dataclass(frozen=True)
class BuildPlan:
    """What tonight's dbt build covers: `selectors` None = everything, () = nothing."""

    state: SourceState
    changed: frozenset[str] | None
    selectors: tuple[str, ...] | None
    reason: str

    def keep_as_built(self, paths: Paths) -> None:
        """Tonight's build passed: what it read is what the next night compares with."""
        self.state.write(built_state_file(paths))

    def dbt_args(self) -> tuple[str, ...] | None:
        """The `dbt` arguments to run, or None when there is nothing to build."""
        if self.selectors is None:
            return ("build", "--full-refresh")
        if not self.selectors:
            return None
        # unit tests test the project's SQL, not the data: the full build after every change of
        # the project ran them, and this project has not changed since
        return ("build", "--select", *self.selectors, "--exclude-resource-type", "unit_test")


def plan_build(paths: Paths, full_rebuild: bool) -> BuildPlan:
    """Compare the raw tables with the last passing build and choose what dbt builds."""
    state = current_state(paths)
    manifest_file = paths.dbt_target_dir / "manifest.json"
    changed = state.changed_since(SourceState.read(built_state_file(paths)))
    if full_rebuild:
        return BuildPlan(state, None, None, "full rebuild asked (NIGHTLY__FULL_REBUILD)")
    if EngineSettings.from_config().is_spark:
        return BuildPlan(state, None, None, "the Spark engine builds everything every night")
    if changed is None or not manifest_file.exists():
        return BuildPlan(state, None, None, "no passing build of this dbt project yet")
    manifest = Manifest(manifest_file)
    selectors = []
    for table in sorted(changed):
        source = manifest.source_of_table(table)
        if source is None:  # a raw table no model reads (dlt's own state tables)
            continue
        reached = manifest.descendants(source)
        if manifest.builds_a_table(reached) or (
            table not in TIMESTAMP_SOURCES and manifest.runs_a_test(reached)
        ):
            name = manifest.sources[source]
            selectors.append(f"source:{name['source_name']}.{name['name']}+")
    changed_text = ", ".join(sorted(changed)) or "nothing"
    reason = f"raw tables changed since the last passing build: {changed_text}"
    return BuildPlan(state, frozenset(changed), tuple(selectors), reason)


def unchanged_since_publish(paths: Paths, state: SourceState) -> frozenset[str]:
    """The analyst relations (`schema.name`) that are the same in the warehouse as in the
    published file, by `state` (publish_state) against the last publish's: dbt models whose
    sources all kept their fingerprints, and `ml` tables that kept theirs."""
    published = SourceState.read(published_state_file(paths))
    changed = state.changed_since(published)
    manifest_file = paths.dbt_target_dir / "manifest.json"
    if changed is None or not manifest_file.exists() or not paths.analytics.exists():
        return frozenset()
    manifest = Manifest(manifest_file)
    unchanged = {table for table in state.sources if table not in changed}
    models = {
        relation
        for relation, uid in manifest.model_relations().items()
        # a source without a fingerprint (ops, written by publish itself) is never the same
        if manifest.upstream_sources(uid) <= unchanged
    }
    return frozenset(models | {table for table in unchanged if table.startswith(f"{ML_SCHEMA}.")})
