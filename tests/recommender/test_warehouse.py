"""The recommender reads the warehouse read-only, so another reader never stops it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recommender.warehouse import read_listens, read_users
from tests.recommender.conftest import BuiltWarehouse

HOLD_A_READER = """
import duckdb, sys, time
connection = duckdb.connect(sys.argv[1], read_only=True)
print("open", flush=True)
time.sleep(60)
"""


def test_reads_work_while_another_process_reads_the_warehouse(
    built_warehouse: BuiltWarehouse, tmp_path: Path
) -> None:
    copy = built_warehouse.copy(tmp_path)
    reader = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_READER, str(copy)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        listens = read_listens(copy)
        users = read_users(copy)
    finally:
        reader.kill()
        reader.wait()
    assert len(listens.user_ids) > 0 and listens.listens.sum() >= len(listens.user_ids)
    assert len(users) == len(built_warehouse.world.keys("users", 1))
