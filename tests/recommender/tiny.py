"""A tiny warehouse for the recommender's fast tests: the marts it reads, written straight from
the dev API's `World` (no extractor, no dbt), and the ml tables exactly as dbt's macro
create_ml_tables makes them. Built in well under a second, so `make mutation` can run the tests
that use it once per mutant.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from dev_api.world import World
from recommender.data import Interactions
from recommender.warehouse import ModelVersion

REPO_ROOT = Path(__file__).resolve().parents[2]
ML_MACRO = REPO_ROOT / "dbt_project" / "macros" / "ml" / "create_ml_tables.sql"
FIRST_LOAD = datetime(2026, 1, 1, 3, 0)


def ml_tables_ddl() -> str:
    """The body of dbt's create_ml_tables macro on DuckDB: plain SQL, no Jinja inside."""
    body = re.search(
        r"macro duckdb__create_ml_tables\(\) -%}(.*?){%- endmacro", ML_MACRO.read_text(), re.DOTALL
    )
    assert body is not None, f"{ML_MACRO}: no macro body"
    return body.group(1)


def world_listens(world: World) -> Interactions:
    """Day 0's listen histories as a users x tracks matrix of listen counts."""
    users: list[int] = []
    tracks: list[int] = []
    for record in world.records("listen_history", 0):
        users += [record["user_id"]] * len(record["items"] or [])
        tracks += [track for track in record["items"] or [] if track is not None]
    return Interactions.from_pairs(
        np.array(users, dtype=np.int64),
        np.array(tracks, dtype=np.int64),
        np.ones(len(users), dtype=np.float32),
    )


def world_catalogue(world: World) -> dict[int, list[str]]:
    """Every track with its genres, as marts.dim_tracks holds them."""
    return {
        record["id"]: [genre.strip() for genre in record["genres"].split(",")]
        for record in world.records("tracks", 0)
    }


def write_warehouse(path: Path, world: World, with_ml: bool = True, loads: int = 1) -> Path:
    """The marts the recommender reads, from `world`'s day 0: the (user, track) pairs spread
    over `loads` nightly loads, first seen at FIRST_LOAD, a day later, and so on."""
    listens = world_listens(world)
    entries = listens.matrix.tocoo()
    user_ids = listens.user_ids[entries.row]
    track_ids = listens.track_ids[entries.col]
    counts = entries.data.astype(np.int64)
    first_seen = [FIRST_LOAD + timedelta(days=n % loads) for n in range(len(counts))]
    tables = {
        # one row per listen, as the mart holds them
        "fct_listen_events": pa.table(
            {
                "user_id": np.repeat(user_ids, counts),
                "track_id": np.repeat(track_ids, counts),
                "first_seen_at": pa.array(np.repeat(first_seen, counts), pa.timestamp("us")),
            }
        ),
        "fct_user_tracks": pa.table(
            {"user_id": user_ids, "track_id": track_ids, "listen_count": counts}
        ),
        "dim_users": pa.table(
            {
                "user_id": [record["id"] for record in world.records("users", 0)],
                "favorite_genre": [
                    record["favorite_genres"].split(",")[0].strip() or None
                    for record in world.records("users", 0)
                ],
            }
        ),
        "dim_tracks": pa.table(
            {
                "track_id": list(world_catalogue(world)),
                "genres": list(world_catalogue(world).values()),
            }
        ),
    }
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema marts")
        for name, table in tables.items():
            connection.register("source", table)
            connection.execute(f"create table marts.{name} as select * from source")
            connection.unregister("source")
        if with_ml:
            connection.execute(ml_tables_ddl())
    return path


def a_version(model_version: int, status: str = "candidate", **changes: Any) -> ModelVersion:
    """A registry row whose every field differs from another version's."""
    fields: dict[str, Any] = {
        "model_version": model_version,
        "model_name": f"model {model_version}",
        "model_kind": ("popularity", "co_listen", "als")[model_version % 3],
        "status": status,
        "status_reason": f"why {model_version}",
        "trained_at": FIRST_LOAD + timedelta(hours=model_version, microseconds=model_version),
        "split_kind": "time" if model_version % 2 else "random",
        "window_start_at": FIRST_LOAD - timedelta(days=model_version),
        "window_end_at": FIRST_LOAD,
        "holdout_start_at": FIRST_LOAD if model_version % 2 else None,
        "train_listens": 1000 + model_version,
        "train_users": 100 + model_version,
        "train_tracks": 50 + model_version,
        "holdout_users": 90 + model_version,
        "holdout_tracks": 400 + model_version,
        "hyperparameters": {"factors": model_version, "grid": [0.1, 0.2]},
        "recall_at_10": 0.1 * model_version,
        "ndcg_at_10": 0.01 * model_version,
        "catalogue_coverage": 0.5,
        "train_seconds": 1.5 * model_version,
        "baseline_metrics": {"popularity": {"recall_at_10": 0.05}},
        "artifact_path": f"/models/{model_version}",
        "eval_users": 80 + model_version if model_version % 2 else None,
    }
    return ModelVersion(**{**fields, **changes})
