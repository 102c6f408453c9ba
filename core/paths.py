"""Where everything the pipeline reads and writes lives: one data folder, resolved once.

Every path derives from the data folder (`MOOVITAMIX_DATA_DIR`, default `data`, git-ignored), so a
fresh clone needs no configuration. Two files can be put elsewhere: the private warehouse
(`MOOVITAMIX_DUCKDB_PATH`) and the analysts' file (`MOOVITAMIX_ANALYTICS_PATH`). The three are
read through dlt's providers like every other setting, as top-level keys, so the same names work
in the environment and in `.dlt/config.toml` (`moovitamix_data_dir = "/srv/moovitamix"`).
"""

from __future__ import annotations

import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import dlt

from core.privacy import PrivacySettings

DEFAULT_DATA_DIR = Path("data")
PRIVATE_UMASK = 0o077  # what the pipeline creates: folders 0700, files 0600


class DataDirError(RuntimeError):
    """The data folder cannot hold personal data safely; the message says what to change."""


@dataclass(frozen=True)
class Paths:
    data_dir: Path
    # The pipeline's private warehouse: raw history and staging (personal data). Only the pipeline
    # opens it: the extractor, dbt, the recommender's scoring, and the nightly publish.
    warehouse: Path
    # The analysts' file: the analyst-facing schemas, replaced whole by each successful night.
    analytics: Path

    @classmethod
    def under(
        cls, data_dir: Path, warehouse: Path | None = None, analytics: Path | None = None
    ) -> Paths:
        """The layout of a data folder (tests and benchmarks build theirs in a temp folder)."""
        data_dir = Path(data_dir)
        return cls(
            data_dir=data_dir,
            warehouse=Path(warehouse) if warehouse else data_dir / "moovitamix.duckdb",
            analytics=Path(analytics) if analytics else data_dir / "analytics.duckdb",
        )

    @classmethod
    def resolve(cls) -> Paths:
        """The configured layout: MOOVITAMIX_DATA_DIR, _DUCKDB_PATH and _ANALYTICS_PATH."""
        return cls.under(
            Path(dlt.config.get("moovitamix_data_dir", str) or DEFAULT_DATA_DIR),
            dlt.config.get("moovitamix_duckdb_path", str),
            dlt.config.get("moovitamix_analytics_path", str),
        )

    def prepare(self) -> None:
        """Make the data folder private before anything is written, whatever the umask.

        Everything this process (and its children: dbt) creates from now on is 0600 / 0700, and
        what an older version left more open is tightened. A data folder that other accounts can
        write to is refused: they could replace the warehouse or read what lands there. With an
        analysts' Unix group, the folder is group-owned and 0710 (the group may reach the
        analysts' file, never list or read the rest).
        """
        os.umask(PRIVATE_UMASK)
        analyst_group = PrivacySettings.from_config().analytics_group
        if self.data_dir.exists():
            mode = stat.S_IMODE(self.data_dir.stat().st_mode)
            if mode & 0o022:
                raise DataDirError(
                    f"the data folder {self.data_dir} can be written by other accounts "
                    f"(mode {mode:04o}): nothing was written; make it private "
                    f"(`chmod go-w {self.data_dir}`) or set MOOVITAMIX_DATA_DIR to another folder"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        folder_mode = 0o700
        if analyst_group and self.analytics.parent.resolve() == self.data_dir.resolve():
            os.chown(self.data_dir, -1, grp.getgrnam(analyst_group).gr_gid)
            folder_mode = 0o710
        self.data_dir.chmod(folder_mode)
        for root, folders, files in os.walk(self.data_dir):
            for name in folders:
                _tighten(Path(root, name), 0o700)
            for name in files:
                if Path(root, name) != self.analytics:
                    _tighten(Path(root, name), 0o600)

    @property
    def pipelines_dir(self) -> Path:
        """dlt's working folder: load packages, state, traces."""
        return self.data_dir / "dlt"

    @property
    def runs_dir(self) -> Path:
        """The run ledger: one JSON file per nightly run."""
        return self.data_dir / "runs"

    @property
    def report(self) -> Path:
        """The run report: one self-contained HTML page, rewritten after every run."""
        return self.data_dir / "report.html"

    @property
    def lock_file(self) -> Path:
        """The run lock every writer of the warehouse takes (core.lock)."""
        return self.data_dir / "nightly.lock"

    @property
    def dbt_target_dir(self) -> Path:
        """dbt's target folder; its logs go beside it (`dbt/logs`)."""
        return self.data_dir / "dbt" / "target"

    @property
    def models_dir(self) -> Path:
        """The recommender's versioned model artifacts."""
        return self.data_dir / "models"

    @property
    def dev_api_day_file(self) -> Path:
        """The embedded dev API's day counter: the next simulated day to serve."""
        return self.data_dir / "dev_api_day"


def _tighten(path: Path, private: int) -> None:
    """Remove what `private` does not allow (never adds a permission)."""
    mode = stat.S_IMODE(path.lstat().st_mode)
    if not path.is_symlink() and mode & ~private:
        path.chmod(mode & private)
