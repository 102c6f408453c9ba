"""Disk space: does the data folder have room for a night, and how much is left.

What a night needs is measured, not guessed: every run records the data folder's size when it
ends, so the largest growth from one run to the next over the last nights is known, and a
publish writes a new analysts' file beside the old one before the swap. A night needs
`free_space_margin` times their sum, and never less than `min_free_mb`. The nightly job checks
it before extracting (and refuses to start), `make status` and the dead-man's switch show it.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.paths import Paths
from nightly.ledger import RunRecord
from nightly.settings import NightlySettings

MB = 1_000_000


@dataclass(frozen=True)
class SpaceCheck:
    """Free space in the data folder against what a night needs."""

    folder: Path
    free_bytes: int
    needed_bytes: int
    basis: str  # how `needed_bytes` was reckoned

    @property
    def ok(self) -> bool:
        return self.free_bytes >= self.needed_bytes

    def describe(self) -> str:
        return (
            f"{megabytes(self.free_bytes)} free in {self.folder}; a night needs about "
            f"{megabytes(self.needed_bytes)} ({self.basis})"
        )


def check_space(
    paths: Paths, records: Sequence[RunRecord], settings: NightlySettings
) -> SpaceCheck:
    """The data folder's free space against the last nights' needs (`records`, oldest first)."""
    sizes = [r.data_dir_bytes for r in records if r.data_dir_bytes is not None]
    if len(sizes) == 1:  # one night known: its folder is all it grew (from nothing, or unknown)
        growth = sizes[0]
    else:
        recent = sizes[-(settings.history_runs + 1) :]
        growth = max((b - a for a, b in itertools.pairwise(recent)), default=0)
    publish = paths.analytics.stat().st_size if paths.analytics.exists() else 0
    floor = int(settings.min_free_mb * MB)
    needed = max(floor, int(settings.free_space_margin * (growth + publish)))
    basis = (
        f"{settings.free_space_margin:g} x (growth {megabytes(growth)} + publish "
        f"{megabytes(publish)}), at least NIGHTLY__MIN_FREE_MB={settings.min_free_mb:g}"
    )
    return SpaceCheck(paths.data_dir, free_bytes(paths.data_dir), needed, basis)


def free_bytes(folder: Path) -> int:
    """Free space for us on the filesystem of `folder` (or of its nearest existing parent)."""
    folder = folder.resolve()
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def folder_bytes(folder: Path) -> int:
    """Space the files under `folder` take on disk (a file that vanishes meanwhile counts 0)."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total


def megabytes(size: int) -> str:
    return f"{size / MB:,.1f} MB"
