"""Which night is served, and the switch to the next one without a failed or mixed request.

The nightly job replaces the analysts' file by rename. A watcher thread stats the path every
`check_seconds`; when its identity (device, inode, mtime, size) changed, it reads the new file
into a `Night` off to the side, then swaps one reference. A request takes that reference once
and answers from it alone, so it never mixes two nights; requests already running finish on the
old night, which is freed when the last of them drops it. Until the new night is read, the old
one keeps answering: no request waits for a switch.

DuckDB caches open databases by path, and a connection opened before the rename keeps reading
the old file. So each file is opened through a fresh hard link with a unique name beside it,
unlinked as soon as it is open (the open file keeps the inode): the link pins exactly the file
that was there, even if another publish renames over the path meanwhile.
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import threading
from pathlib import Path

import duckdb

from serve.night import Night

log = logging.getLogger("moovitamix.serve")

Identity = tuple[int, int, int, int]


class Nights:
    """The night to serve from `path`, switched when the nightly job publishes a new one."""

    def __init__(self, path: Path, check_seconds: float = 0.5) -> None:
        self.path = path
        self.check_seconds = check_seconds
        self.current: Night | None = None
        self._identity: Identity | None = None
        self._failed: Identity | None = None
        self._links = itertools.count()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="nights", daemon=True)

    def start(self) -> None:
        """Read the published night, if any, then watch for the next."""
        self.check()
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join()

    def check(self) -> None:
        """Switch to the file at `path` if it is not the one served; drop it if it is gone."""
        identity = _identity(self.path)
        if identity is None:
            if self.current is not None:
                log.warning("%s is gone: serving no night", self.path)
            self.current, self._identity = None, None
            return
        if identity in (self._identity, self._failed):
            return
        try:
            identity, night = self._read()
        except (duckdb.Error, OSError, ValueError) as error:
            # a broken file: keep serving the night we have, and say so once per file
            self._failed = identity
            log.error("cannot serve %s, keeping the previous night: %s", self.path, error)
            return
        self.current, self._identity = night, identity
        # Everything alive now (the libraries, the app, this night) is long-lived: keep the
        # cyclic collector from walking it again. Its full passes over a few hundred thousand
        # objects stalled requests for 200-300 ms (p99 at 16 clients: 216 ms, 29 ms frozen).
        # Frozen objects are still freed by reference counting: a night has no cycles.
        gc.freeze()
        log.info("serving night %s (published %s)", night.run_id, night.published_at)

    def _watch(self) -> None:
        while not self._stop.wait(self.check_seconds):
            self.check()

    def _read(self) -> tuple[Identity, Night]:
        link = self.path.with_name(f".{self.path.name}.serve-{os.getpid()}-{next(self._links)}")
        os.link(self.path, link)
        try:
            identity = _identity(link)
            connection = duckdb.connect(str(link), read_only=True)
        finally:
            link.unlink()
        assert identity is not None
        with connection:
            return identity, Night.read(connection)


def _identity(path: Path) -> Identity | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size
