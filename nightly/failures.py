"""Why a night failed, in the operator's words: its exit code, what happened and what to do.

A step fails by raising. Most failures say what they are (`StepFailed`: the API, a dbt model);
a few come from the machine and are told apart here, because each has its own remedy and exit
code: the disk is full, DuckDB ran out of its memory limit, the night or a step ran past its
deadline. Anything else is a bug: its traceback is logged, and the last line still says what
to do.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from pathlib import Path

from core.warehouse import MEMORY_LIMIT_SETTING, TEMP_DIRECTORY_SETTING, DuckDBSettings
from nightly.disk import free_bytes, megabytes

EXIT_SUCCESS = 0  # published (warnings allowed)
EXIT_FAILED = 1  # a step failed or the run was interrupted: nothing published
EXIT_DATA_QUALITY = 2  # a dbt test or an anomaly check found an error: nothing published
EXIT_NO_SPACE = 3  # the data folder's disk is too full to start, or filled up during the night
EXIT_OUT_OF_MEMORY = 4  # DuckDB needed more than its memory limit
EXIT_LOCKED = 75  # another run holds the lock (sysexits' EX_TEMPFAIL: try again later)
EXIT_UNSAFE = 78  # the data folder is open to other accounts: nothing written (EX_CONFIG)
EXIT_DEADLINE = 124  # the night or a step ran past its deadline (as timeout(1) exits)

NO_SPACE = re.compile(r"[^\n]*No space left on device[^\n]*")
OUT_OF_MEMORY = re.compile(r"Out of Memory Error[^\n]*")
NEXT_NIGHT_RECOVERS = (
    "the next run closes this one and completes what it left: rerun `make elt` once that is "
    "done, or let the next cron run"
)


class StepFailed(Exception):
    """A step could not do its job; the message says what and is the run record's error."""


class Interrupted(BaseException):
    """SIGTERM (a scheduler's timeout, a shutdown): fail the current step and record it."""


class DeadlineExceeded(BaseException):
    """The running step passed its deadline or the night's: stop it like an interruption."""


@dataclass(frozen=True)
class Failure:
    exit_code: int
    message: str  # the run record's error_message
    action: str  # what the operator should do


def diagnose(exc: BaseException, step: str, data_dir: Path, duckdb: DuckDBSettings) -> Failure:
    """The failure `exc` is, as the run record and the alert say it."""
    text = "\n".join(str(e) for e in _chain(exc))
    if isinstance(exc, DeadlineExceeded):
        return Failure(
            EXIT_DEADLINE,
            str(exc),
            "find out what was slow (the API's pace is in the message; `make status`); if the "
            "data grew, raise NIGHTLY__NIGHT_DEADLINE_MINUTES or NIGHTLY__STEP_DEADLINE_SHARE; "
            + NEXT_NIGHT_RECOVERS,
        )
    if any(isinstance(e, OSError) and e.errno == errno.ENOSPC for e in _chain(exc)) or (
        NO_SPACE.search(text)
    ):
        found = NO_SPACE.search(text)
        detail = found.group(0).strip() if found else "No space left on device"
        return Failure(
            EXIT_NO_SPACE,
            f"the disk is full ({megabytes(free_bytes(data_dir))} free in {data_dir}): {detail}",
            f"free space on the disk of {data_dir} (old logs, other files), or move the data "
            f"folder (MOOVITAMIX_DATA_DIR) to a bigger disk; `make status` says how much a night "
            f"needs; " + NEXT_NIGHT_RECOVERS,
        )
    limit = duckdb.duckdb_memory_limit
    if found := OUT_OF_MEMORY.search(text):  # DuckDB reached its limit
        return Failure(
            EXIT_OUT_OF_MEMORY,
            f"out of memory under {MEMORY_LIMIT_SETTING}={limit}: {found.group(0).strip()}",
            f"raise {MEMORY_LIMIT_SETTING} (now {limit}; DuckDB spills what does not fit to "
            f"{TEMP_DIRECTORY_SETTING}), or run on a machine with more memory; "
            + NEXT_NIGHT_RECOVERS,
        )
    if any(isinstance(e, MemoryError) for e in _chain(exc)):  # Python itself found none left
        return Failure(
            EXIT_OUT_OF_MEMORY,
            f"the machine ran out of memory outside DuckDB ({_describe(exc)}); DuckDB may "
            f"use up to {MEMORY_LIMIT_SETTING}={limit}",
            f"lower {MEMORY_LIMIT_SETTING} to leave Python and dbt room, stop what else uses "
            "the machine's memory, or run on a bigger machine; " + NEXT_NIGHT_RECOVERS,
        )
    if isinstance(exc, (Interrupted, KeyboardInterrupt)):
        return Failure(
            EXIT_FAILED,
            _describe(exc),
            "nothing, if the stop was intended (a shutdown, a scheduler's timeout); "
            + NEXT_NIGHT_RECOVERS,
        )
    if isinstance(exc, StepFailed):
        return Failure(
            EXIT_FAILED,
            str(exc),
            "read the error (the API, a dbt model...); `make status` lists the runs; "
            + NEXT_NIGHT_RECOVERS,
        )
    return Failure(
        EXIT_FAILED,
        _describe(exc),
        "an unexpected error, likely a bug: its traceback is in the log above; "
        + NEXT_NIGHT_RECOVERS,
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception it was raised from or during."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
