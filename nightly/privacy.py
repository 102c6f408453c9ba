"""Personal data kept only as long as needed: erasure on request, and after a retention period.

`forget(config, user_id, requested_by)` (`make forget USER_ID=...`; also the function a request
system calls) erases one person's personal columns (extract.endpoints.USER_PERSONAL_COLUMNS) from
every version of raw.users, rewrites the warehouse so no freed block keeps them, deletes the
Spark engine's Parquet copies of raw (extract/lake.py: the next Spark night exports afresh), and
records the request: who asked, when, which columns and how many versions, never the values.
A forgotten user stays forgotten: the nightly `privacy` step erases whatever the service sends
again for them. Listening history stays, tied to the id; marts and features hold no personal
column, and the analysts' file never did (gender only with `privacy.publish_gender`).

The same step erases the personal columns of users the service deleted more than
`privacy.retention_days` ago. Requests live beside the run ledger (`runs/erasures/`), readable
without the warehouse, and reach the `ops.erasure_requests` table.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import pyarrow as pa

from core import lock
from core.paths import DataDirError, Paths
from core.warehouse import RAW_SCHEMA, compact, connect
from extract import lake
from extract.endpoints import USER_PERSONAL_COLUMNS
from nightly.settings import NightConfig

log = logging.getLogger("moovitamix.privacy")

USERS_TABLE = f"{RAW_SCHEMA}.users"
REQUEST = "request"  # a person asked to be forgotten
RETENTION = "retention"  # the service deleted the account long enough ago
EXIT_LOCKED = 75
EXIT_UNSAFE = 78

ERASURE_SCHEMA = pa.schema(
    [
        ("request_id", pa.string()), ("user_id", pa.int64()), ("reason", pa.string()),
        ("requested_at", pa.timestamp("us")), ("requested_by", pa.string()),
        ("erased_columns", pa.list_(pa.string())), ("versions_erased", pa.int64()),
    ]
)  # fmt: skip


@dataclass(frozen=True)
class Erasure:
    """One erasure, as recorded: never the erased values."""

    request_id: str
    user_id: int
    reason: str  # request or retention
    requested_at: datetime
    requested_by: str
    erased_columns: tuple[str, ...]
    versions_erased: int

    def describe(self) -> str:
        return (
            f"user {self.user_id}: erased {', '.join(self.erased_columns)} from "
            f"{self.versions_erased} version(s) of {USERS_TABLE} ({self.reason}, "
            f"requested by {self.requested_by} at {self.requested_at:%Y-%m-%d %H:%M:%S} UTC)"
        )


class ErasureLog:
    """The erasures, one JSON file each beside the run ledger, written atomically."""

    def __init__(self, paths: Paths) -> None:
        self.folder = paths.runs_dir / "erasures"

    def write(self, erasure: Erasure) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{erasure.request_id}.json"
        temporary = final.with_suffix(".tmp")
        row = {**asdict(erasure), "requested_at": erasure.requested_at.isoformat()}
        temporary.write_text(json.dumps(row, sort_keys=True))
        temporary.replace(final)

    def erasures(self) -> list[Erasure]:
        if not self.folder.exists():
            return []
        erasures = []
        for path in sorted(self.folder.glob("*.json")):
            row = json.loads(path.read_text())
            row["requested_at"] = datetime.fromisoformat(row["requested_at"])
            row["erased_columns"] = tuple(row["erased_columns"])
            erasures.append(Erasure(**row))
        return erasures

    def forgotten_user_ids(self) -> set[int]:
        return {e.user_id for e in self.erasures() if e.reason == REQUEST}

    def table(self) -> pa.Table:
        """ops.erasure_requests."""
        rows = [
            {
                **asdict(erasure),
                "requested_at": erasure.requested_at.replace(tzinfo=None),
                "erased_columns": list(erasure.erased_columns),
            }
            for erasure in self.erasures()
        ]
        return pa.Table.from_pylist(rows, schema=ERASURE_SCHEMA)


def erase_users(connection: duckdb.DuckDBPyConnection, user_ids: Sequence[int]) -> dict[int, int]:
    """Set the personal columns of every version of these users to null; returns, per user, how
    many versions still held something to erase (0 when already erased: idempotent)."""
    if not user_ids:
        return {}
    for column in USER_PERSONAL_COLUMNS:  # raw tables were created NOT NULL by the load
        connection.execute(f"alter table {USERS_TABLE} alter column {column} drop not null")
    holding = " or ".join(f"{column} is not null" for column in USER_PERSONAL_COLUMNS)
    counts = dict(
        connection.execute(
            f"select id, count(*) from {USERS_TABLE} where id in (select unnest(?)) "
            f"and ({holding}) group by id",
            [list(user_ids)],
        ).fetchall()
    )
    if counts:
        assignments = ", ".join(f"{column} = null" for column in USER_PERSONAL_COLUMNS)
        connection.execute(
            f"update {USERS_TABLE} set {assignments} where id in (select unnest(?))",
            [list(counts)],
        )
    return {user_id: counts.get(user_id, 0) for user_id in user_ids}


def deleted_before(connection: duckdb.DuckDBPyConnection, cutoff: datetime) -> list[int]:
    """Users whose every version is retired, the last retirement loaded before `cutoff`, and
    who still hold personal data."""
    holding = " or ".join(f"{column} is not null" for column in USER_PERSONAL_COLUMNS)
    return [
        user_id
        for (user_id,) in connection.execute(
            f"""
            select id from {USERS_TABLE}
            group by id
            having count(*) filter (where _dlt_valid_to is null) = 0
               and max(_dlt_valid_to) < ?
               and bool_or({holding})
            order by id
            """,
            [cutoff.replace(tzinfo=None)],
        ).fetchall()
    ]


def forget(
    config: NightConfig, user_id: int, requested_by: str, now: datetime | None = None
) -> Erasure:
    """Erase one person's personal data from raw history now and for good (see the module).

    The caller holds the run lock (DuckDB takes one writer); `main` does.
    """
    now = now or datetime.now(UTC)
    with connect(config.paths.warehouse) as connection:
        versions = erase_users(connection, [user_id])[user_id]
        connection.execute("checkpoint")
    compact(config.paths.warehouse)
    lake.erase(config.paths)
    erasure = _erasure(now, REQUEST, user_id, requested_by, versions)
    ErasureLog(config.paths).write(erasure)
    log.info("%s", erasure.describe())
    return erasure


def apply_retention(config: NightConfig, now: datetime | None = None) -> list[Erasure]:
    """The nightly part: erase deleted users past retention, and whatever the service sent
    again for users who asked to be forgotten; rewrite the warehouse if anything was erased."""
    now = now or datetime.now(UTC)
    erasure_log = ErasureLog(config.paths)
    cutoff = now - timedelta(days=config.privacy.retention_days)
    with connect(config.paths.warehouse) as connection:
        expired = deleted_before(connection, cutoff)
        erased = erase_users(connection, expired)
        again = erase_users(connection, sorted(erasure_log.forgotten_user_ids()))
        connection.execute("checkpoint")
    if not any(erased.values()) and not any(again.values()):
        return []
    compact(config.paths.warehouse)
    lake.erase(config.paths)
    erasures = [
        _erasure(
            now,
            reason,
            user_id,
            "nightly retention" if reason == RETENTION else "standing request",
            versions,
        )
        for reason, counts in ((RETENTION, erased), (REQUEST, again))
        for user_id, versions in counts.items()
        if versions
    ]
    for erasure in erasures:
        erasure_log.write(erasure)
    return erasures


def _erasure(now: datetime, reason: str, user_id: int, requested_by: str, versions: int) -> Erasure:
    return Erasure(
        request_id=f"{now:%Y%m%dT%H%M%S%fZ}-{reason}-{user_id}",
        user_id=user_id,
        reason=reason,
        requested_at=now,
        requested_by=requested_by,
        erased_columns=USER_PERSONAL_COLUMNS,
        versions_erased=versions,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m nightly.privacy forget USER_ID [--requested-by NAME]` (`make forget`)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m nightly.privacy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    forgetting = commands.add_parser("forget", help="erase one user's personal data for good")
    forgetting.add_argument("user_id", type=int)
    forgetting.add_argument(
        "--requested-by", default=getpass.getuser(), help="who asked (default: this account)"
    )
    args = parser.parse_args(argv)
    config = NightConfig.resolve()
    try:
        config.paths.prepare()
        if not config.paths.warehouse.exists():
            print(f"forget: no warehouse at {config.paths.warehouse}: nothing to erase")
            return 1
        with lock.exclusive(config.paths.lock_file):
            erasure = forget(config, args.user_id, args.requested_by)
    except lock.LockHeld as exc:
        print(f"forget: {exc}; try again when it has finished", file=sys.stderr)
        return EXIT_LOCKED
    except DataDirError as exc:
        print(f"forget: {exc}", file=sys.stderr)
        return EXIT_UNSAFE
    print(erasure.describe())
    print("The next nightly publish replaces the analysts' file (it never held these columns).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
