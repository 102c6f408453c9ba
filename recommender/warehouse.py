"""The recommender's only contact with DuckDB: it reads dbt marts and writes schema `ml`.

DuckDB allows one writing process per file, so every function opens a connection, does one
thing and closes it again: read-only to read (so a read never waits for, nor blocks, another
reader), read-write only to write `ml`.

SQL is written in triple quotes, which `make mutation` leaves alone: DuckDB's SQL is
case-insensitive, so every mutant that changes a query's case would be equivalent
(docs/mutation.md); the tests check each query's results.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core import warehouse
from recommender import RecommenderError

SCORED_USER_COLUMNS = ("user_id", "model_version", "inputs_hash", "context_hash", "scored_at")
RECOMMENDATION_COLUMNS = (
    "user_id",
    "rank",
    "track_id",
    "score",
    "model_version",
    "is_cold_start",
    "generated_at",
)


@contextmanager
def connect(
    path: Path, writes_ml: bool = False, **options: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection: read-only, or read-write to write schema `ml`, whose tables must
    exist; `options` are further DuckDB settings.

    dbt defines and creates them (macro create_ml_tables) in the build that makes the marts the
    recommender reads, so a warehouse without them has not been built yet.
    """
    with warehouse.connect(path, read_only=not writes_ml, **options) as connection:
        if writes_ml and not _has_ml_schema(connection):
            raise RecommenderError(
                f"{path} has no ml tables: run `dbt build` (make elt) first, which creates them"
            )
        yield connection


def _has_ml_schema(connection: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        connection.execute(
            """
            select count(*) from duckdb_tables()
            where schema_name = 'ml' and table_name = 'model_versions'
            """
        ).fetchall()[0][0]
    )


# ---- the marts the recommender reads (declared as the `recommender` exposure in dbt) -----------

# rows streamed from DuckDB at a time by `_fetch_arrays`
_FETCH_ROWS = 1_000_000


def _fetch_arrays(
    connection: duckdb.DuckDBPyConnection, query: str, dtypes: dict[str, Any]
) -> dict[str, np.ndarray]:
    """The query's columns as NumPy arrays of `dtypes` (no NULLs), streamed into arrays sized
    by a count first, both in one snapshot: fetchnumpy holds DuckDB's whole result beside the
    arrays (17 M (user, track) pairs at 1,000,000 users peaked 385 MB higher). For a scan: the
    count runs the query once more."""
    connection.begin()
    [(rows,)] = connection.execute(f"select count(*) from ({query})").fetchall()
    arrays = {name: np.empty(rows, dtype=dtype) for name, dtype in dtypes.items()}
    at = 0
    for batch in connection.sql(query).to_arrow_reader(_FETCH_ROWS):
        for name, array in arrays.items():
            array[at : at + batch.num_rows] = batch.column(name).to_numpy()
        at += batch.num_rows
    connection.commit()
    assert at == rows, f"{at} rows streamed, {rows} counted in the same snapshot"
    return arrays


@dataclass(frozen=True)
class Listens:
    """Listens grouped by (user, track, load that first showed them): the input of training."""

    user_ids: np.ndarray
    track_ids: np.ndarray
    first_seen_us: np.ndarray  # first_seen_at as microseconds since the epoch (UTC)
    listens: np.ndarray


def read_listens(path: Path) -> Listens:
    """marts.fct_listen_events (every listen ever seen, deleted users' too), one row per
    (user, track, first_seen_at) with its number of listens.

    On one DuckDB thread: its hash aggregate of 20 M listens into 16 M groups peaked at 1,944 MB
    on 2 threads (the training run's peak), 1,536 MB on one, in 4.3 s against 7.7 s (load 8)."""
    with connect(path, threads="1") as connection:
        # fetched whole, not by _fetch_arrays: its count would run this aggregate twice
        columns = connection.execute(
            """
            select user_id, track_id, epoch_us(first_seen_at) as first_seen_us,
                count(*) as listens
            from marts.fct_listen_events group by all
            """
        ).fetchnumpy()
    return Listens(
        columns["user_id"].astype(np.int64, copy=False),
        columns["track_id"].astype(np.int64, copy=False),
        columns["first_seen_us"].astype(np.int64, copy=False),
        columns["listens"].astype(np.float32, copy=False),
    )


def read_user_tracks(
    path: Path, users: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """marts.fct_user_tracks as (user_id, track_id, listen_count) arrays: tonight's histories,
    of every user or only of `users`."""
    query = """
        select user_id, track_id, listen_count from marts.fct_user_tracks
    """
    with connect(path) as connection:
        if users is not None:
            connection.register("wanted", pa.table({"user_id": users}))
            query += """semi join wanted using (user_id)"""
        columns = _fetch_arrays(
            connection,
            query,
            {"user_id": np.int64, "track_id": np.int64, "listen_count": np.float32},
        )
    return columns["user_id"], columns["track_id"], columns["listen_count"]


def read_scoring_inputs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(user_id, inputs_hash) of every current user (marts.dim_users), sorted by user: a hash of
    what a user's recommendations depend on beside the model and the catalogue, their listens
    (track, count) and favourite genre. DuckDB's `hash`, combined per user with xor (each
    (user, track) pair is one row of fct_user_tracks).

    Each pair is hashed as one number, track_id * 2^32 + listen_count (track ids < 2^31, as
    data.PAIR_KEY has them): DuckDB's hash of several values xors their hashes, so the xor of
    `hash(track_id, listen_count)` over a user's pairs would cancel out equal counts (two tracks
    played once each, then each once more, would hash the same)."""
    with connect(path) as connection:
        columns = connection.execute(
            """
            select user_id, hash(favorite_genre, coalesce(listens_hash, 0)) as inputs_hash
            from marts.dim_users left join (
                select user_id, bit_xor(hash(track_id * 4294967296 + listen_count)) as listens_hash
                from marts.fct_user_tracks group by user_id
            ) using (user_id) order by user_id
            """
        ).fetchnumpy()
    return columns["user_id"].astype(np.int64, copy=False), columns["inputs_hash"].astype(np.uint64)


def read_users(path: Path, users: np.ndarray | None = None) -> dict[int, str | None]:
    """Every current user (marts.dim_users), or those of `users`, with their favourite genre."""
    query = """select user_id, favorite_genre from marts.dim_users """
    with connect(path) as connection:
        if users is not None:
            connection.register("wanted", pa.table({"user_id": users}))
            query += """semi join wanted using (user_id)"""
        return dict(connection.execute(query).fetchall())


def read_catalogue(path: Path) -> dict[int, list[str]]:
    """Every current track (marts.dim_tracks) with its genres: what may be recommended."""
    with connect(path) as connection:
        return {
            track_id: list(genres or [])
            for track_id, genres in connection.execute(
                """select track_id, genres from marts.dim_tracks"""
            ).fetchall()
        }


def listens_first_seen_after(path: Path, after: datetime) -> int:
    """How many listens appeared after `after`: the growth since a model's data window."""
    with connect(path) as connection:
        return connection.execute(
            """select count(*) from marts.fct_listen_events where first_seen_at > ?""", [after]
        ).fetchone()[0]


# ---- ml.model_versions: the registry ------------------------------------------------------------


@dataclass(frozen=True)
class ModelVersion:
    """One row of ml.model_versions: a trained model, how it was evaluated and what became of it."""

    model_version: int
    model_name: str
    model_kind: str
    status: str  # candidate, champion, rejected or retired (a champion replaced by a better one)
    status_reason: str
    trained_at: datetime
    split_kind: str  # time or random
    window_start_at: datetime
    window_end_at: datetime
    holdout_start_at: datetime | None
    train_listens: int
    train_users: int
    train_tracks: int
    holdout_users: int
    holdout_tracks: int
    hyperparameters: dict[str, Any]
    recall_at_10: float
    ndcg_at_10: float
    catalogue_coverage: float
    train_seconds: float
    baseline_metrics: dict[str, dict[str, float]]
    artifact_path: str
    eval_users: int | None  # the evaluated sample; None for rows registered before it was kept


_VERSION_FIELDS = tuple(ModelVersion.__dataclass_fields__)
_JSON_FIELDS = ("hyperparameters", "baseline_metrics")


def _version_from_row(row: tuple[Any, ...]) -> ModelVersion:
    values = dict(zip(_VERSION_FIELDS, row, strict=True))
    for name in _JSON_FIELDS:
        values[name] = json.loads(values[name])
    return ModelVersion(**values)


def model_versions(path: Path) -> list[ModelVersion]:
    """The registry, oldest first; empty before the first training run."""
    with connect(path) as connection:
        if not _has_ml_schema(connection):
            return []
        rows = connection.execute(
            f"select {', '.join(_VERSION_FIELDS)} from ml.model_versions order by model_version"
        ).fetchall()
    return [_version_from_row(row) for row in rows]


def champion(path: Path) -> ModelVersion | None:
    """The model version that scores tonight, if one has been promoted yet."""
    champions = [version for version in model_versions(path) if version.status == "champion"]
    return champions[-1] if champions else None


def next_model_version(path: Path) -> int:
    with connect(path, writes_ml=True) as connection:
        return connection.execute(
            """select coalesce(max(model_version), 0) + 1 from ml.model_versions"""
        ).fetchone()[0]


def register(path: Path, version: ModelVersion) -> None:
    """Add a row to the registry."""
    values = [
        json.dumps(value) if name in _JSON_FIELDS else value
        for name, value in zip(_VERSION_FIELDS, vars(version).values(), strict=True)
    ]
    with connect(path, writes_ml=True) as connection:
        connection.execute(
            f"insert into ml.model_versions ({', '.join(_VERSION_FIELDS)}) "
            f"values ({', '.join('?' for _ in _VERSION_FIELDS)})",
            values,
        )


def set_statuses(path: Path, statuses: dict[int, tuple[str, str]]) -> None:
    """Apply the gate's decisions, {version: (status, reason)}, in one transaction."""
    with connect(path, writes_ml=True) as connection:
        connection.begin()
        for model_version, (status, reason) in statuses.items():
            connection.execute(
                """
                update ml.model_versions set status = ?, status_reason = ?
                where model_version = ?
                """,
                [status, reason, model_version],
            )
        connection.commit()


# ---- ml.recommendations ----------------------------------------------------------------------


@dataclass(frozen=True)
class RecommendationsState:
    """What ml.recommendations holds: its size, and when and by which version it was written."""

    rows: int
    users: int
    generated_at: datetime | None
    model_versions: tuple[int, ...]

    def describe(self) -> str:
        if not self.rows:
            return "ml.recommendations is empty"
        versions = ", ".join(str(version) for version in self.model_versions)
        return (
            f"ml.recommendations holds {self.rows:,} rows for {self.users:,} users, generated at "
            f"{self.generated_at:%Y-%m-%d %H:%M:%S} UTC by model version {versions}"
        )


def recommendations_state(path: Path) -> RecommendationsState:
    with connect(path) as connection:
        if not _has_ml_schema(connection):
            return RecommendationsState(0, 0, None, ())
        rows, users, generated_at, versions = connection.execute(
            """
            select count(*), count(distinct user_id), max(generated_at),
                list(distinct model_version order by model_version)
            from ml.recommendations
            """
        ).fetchone()
    return RecommendationsState(rows, users, generated_at, tuple(versions or ()))


@dataclass(frozen=True)
class ScoredUsers:
    """ml.scored_users: what each user's rows of ml.recommendations were computed from."""

    user_ids: np.ndarray  # sorted
    inputs_hashes: np.ndarray  # read_scoring_inputs's hash when the user was scored
    model_versions: frozenset[int]
    context_hashes: frozenset[int]
    # rows of ml.recommendations whose (user, model version) ml.scored_users does not hold:
    # written by something else than scoring (or before ml.scored_users existed)
    unrecorded_rows: int


def read_scored_users(path: Path) -> ScoredUsers:
    with connect(path) as connection:
        if not connection.execute(
            """
            select count(*) from duckdb_tables()
            where schema_name = 'ml' and table_name = 'scored_users'
            """
        ).fetchone()[0]:
            raise RecommenderError(
                f"{path} has no ml.scored_users (added after this warehouse was built): run "
                "`dbt build` (make elt), whose create_ml_tables macro creates it"
            )
        columns = connection.execute(
            """
            select user_id, inputs_hash, model_version, context_hash
            from ml.scored_users order by user_id
            """
        ).fetchnumpy()
        [(unrecorded,)] = connection.execute(
            """
            select count(*) from ml.recommendations anti join ml.scored_users
            using (user_id, model_version)
            """
        ).fetchall()
    return ScoredUsers(
        columns["user_id"].astype(np.int64, copy=False),
        columns["inputs_hash"].astype(np.uint64),
        frozenset(columns["model_version"].tolist()),
        frozenset(columns["context_hash"].tolist()),
        unrecorded,
    )


def replace_recommendations(
    path: Path,
    batches: Iterable[pa.Table],
    scored: pa.Table,
    replaced_users: np.ndarray | None = None,
) -> int:
    """Swap in the recommendations of the `scored` users (rows of ml.scored_users) for the rows
    of `replaced_users` (every user when None), in one transaction: readers see either. Returns
    the rows written.

    `batches` are written as they come into a Parquet file beside the warehouse (memory holds
    one batch), then inserted in one statement, which DuckDB writes to the file as it goes
    rather than holding the uncommitted rows in memory. If producing or writing a batch fails,
    nothing changes and yesterday's rows stay whole.
    """
    with tempfile.TemporaryDirectory(prefix=".recommendations-", dir=path.parent) as tmp:
        staged = Path(tmp) / "recommendations.parquet"
        rows = _stage(batches, staged)
        with connect(path, writes_ml=True) as connection:
            connection.begin()
            if replaced_users is None:
                connection.execute("""delete from ml.recommendations""")
                connection.execute("""delete from ml.scored_users""")
            else:
                connection.register("replaced", pa.table({"user_id": replaced_users}))
                for table in ("recommendations", "scored_users"):
                    connection.execute(
                        f"delete from ml.{table} where user_id in (select user_id from replaced)"
                    )
            if rows:
                connection.execute(
                    f"insert into ml.recommendations ({', '.join(RECOMMENDATION_COLUMNS)}) "
                    f"select {', '.join(RECOMMENDATION_COLUMNS)} from read_parquet(?)",
                    [str(staged)],
                )
            connection.register("scored", scored)
            connection.execute(
                f"insert into ml.scored_users ({', '.join(SCORED_USER_COLUMNS)}) "
                f"select {', '.join(SCORED_USER_COLUMNS)} from scored"
            )
            connection.commit()
    return rows


def _stage(batches: Iterable[pa.Table], staged: Path) -> int:
    """Write the batches into one Parquet file; the rows written."""
    rows = 0
    writer = None
    try:
        for batch in batches:
            if writer is None:
                writer = pq.ParquetWriter(staged, batch.schema)
            writer.write_table(batch)
            rows += batch.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows
