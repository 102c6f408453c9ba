"""The published night being served, and the switch to the next one without a failed request.

The nightly job replaces the analysts' file by rename. Each lease stats the path; when its
identity (device, inode, mtime, size) changed, the new file is opened and becomes current, and
requests already running finish on the old night, whose connection closes when its last lease
ends. A request holds one lease for all its reads, so it never mixes two nights.

DuckDB caches open databases by path: connecting to the same path while the old night is open
would return the old file. So the new file is opened through a fresh hard link with a unique
name beside it, unlinked as soon as it is open (the open file keeps the inode); the link also
pins exactly the file that was there, even if another publish renames over the path meanwhile.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb


class NoPublishedNight(Exception):
    """There is no analysts' file to serve (yet)."""


@dataclass(eq=False)
class Night:
    """One published file, open read-only: its run, and the model that scored it."""

    identity: tuple[int, int, int, int]
    connection: duckdb.DuckDBPyConnection
    run_id: str
    published_at: datetime
    model_kinds: dict[int, str]
    model_version: int | None
    leases: int = 0
    retired: bool = field(default=False)

    @property
    def model_kind(self) -> str | None:
        return None if self.model_version is None else self.model_kinds.get(self.model_version)

    def query(self, sql: str, parameters: list[object]) -> list[tuple]:
        """One read on its own cursor: a DuckDB connection is not shared between threads."""
        cursor = self.connection.cursor()
        try:
            return cursor.execute(sql, parameters).fetchall()
        finally:
            cursor.close()


class Nights:
    """The night to serve from `path`, switched when the nightly job publishes a new one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._current: Night | None = None
        self._links = itertools.count()

    @contextmanager
    def lease(self) -> Iterator[Night]:
        """The current night, kept open until the block ends, whatever is published meanwhile."""
        night = self._acquire()
        try:
            yield night
        finally:
            with self._lock:
                night.leases -= 1
                if night.retired and night.leases == 0:
                    night.connection.close()

    def close(self) -> None:
        with self._lock:
            if self._current is not None:
                self._retire(self._current)
                self._current = None

    def _acquire(self) -> Night:
        identity = _identity(self.path)
        with self._lock:
            current = self._current
            if current is None or current.identity != identity:
                if current is not None:
                    self._retire(current)
                    self._current = None
                if identity is None:
                    raise NoPublishedNight(f"no published file at {self.path}")
                self._current = current = self._open()
            current.leases += 1
            return current

    def _open(self) -> Night:
        link = self.path.with_name(f".{self.path.name}.serve-{os.getpid()}-{next(self._links)}")
        os.link(self.path, link)
        try:
            identity = _identity(link)
            connection = duckdb.connect(str(link), read_only=True, config={"threads": 1})
        finally:
            link.unlink()
        assert identity is not None
        try:
            return _read_night(identity, connection)
        except Exception:
            connection.close()
            raise

    @staticmethod
    def _retire(night: Night) -> None:
        night.retired = True
        if night.leases == 0:
            night.connection.close()


def _identity(path: Path) -> tuple[int, int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size


def _read_night(
    identity: tuple[int, int, int, int], connection: duckdb.DuckDBPyConnection
) -> Night:
    published = connection.execute(
        "select run_id, published_at from ops.pipeline_runs where published_at is not null "
        "order by published_at desc limit 1"
    ).fetchone()
    if published is None:
        raise NoPublishedNight("the published file records no published run in ops.pipeline_runs")
    model_kinds = dict(
        connection.execute("select model_version, model_kind from ml.model_versions").fetchall()
    )
    (model_version,) = connection.execute(
        "select max(model_version) from ml.recommendations"
    ).fetchone()
    return Night(identity, connection, published[0], published[1], model_kinds, model_version)
