"""One writer at a time: an OS lock (`flock`) on a file in the data folder (`Paths.lock_file`).

The nightly job, `make extract`, `make dbt-build`, `make train` and `make recommend` all take it,
since DuckDB allows one writing process per file.

The kernel drops the lock when its holder exits, however it dies (SIGKILL included), so a killed
run never blocks the next one; a pid file could not promise that. Child processes that must count
as part of the run (dbt) inherit the descriptor and hold the lock until they exit too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

# `is_held` takes a shared lock for a few microseconds; a run starting at that very instant
# retries for this long rather than mistake a status probe for another run.
ACQUIRE_PATIENCE_SECONDS = 0.5


class LockHeld(RuntimeError):
    """Another run holds the lock."""


@contextlib.contextmanager
def exclusive(path: Path) -> Iterator[int]:
    """Hold the run lock for the block; yields the locked descriptor (for children to inherit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(descriptor, path)
        yield descriptor
    finally:
        os.close(descriptor)


def _acquire(descriptor: int, path: Path) -> None:
    """Take the exclusive lock, waiting at most ACQUIRE_PATIENCE_SECONDS, else LockHeld."""
    deadline = time.monotonic() + ACQUIRE_PATIENCE_SECONDS
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise LockHeld(f"another nightly run holds {path}") from None
            time.sleep(0.05)


def is_held(path: Path) -> bool:
    """Whether a run holds the lock now, without ever blocking one (a shared lock, released)."""
    if not path.exists():
        return False
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False
