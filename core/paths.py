"""Where everything the pipeline reads and writes lives: one data folder, resolved once.

Every path derives from the data folder (`MOOVITAMIX_DATA_DIR`, default `data`, git-ignored), so a
fresh clone needs no configuration. Two files can be put elsewhere: the private warehouse
(`MOOVITAMIX_DUCKDB_PATH`) and the analysts' file (`MOOVITAMIX_ANALYTICS_PATH`). The three are
read through dlt's providers like every other setting, as top-level keys, so the same names work
in the environment and in `.dlt/config.toml` (`moovitamix_data_dir = "/srv/moovitamix"`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dlt

DEFAULT_DATA_DIR = Path("data")


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
