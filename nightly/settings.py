"""The nightly job's thresholds and alert target, resolved the dlt way (section `nightly`).

Every value has a default; override it with an environment variable (`NIGHTLY__MIN_HISTORY_RUNS=3`)
or under `[nightly]` in `.dlt/config.toml`. The webhook URL is a secret: environment
(`NIGHTLY__ALERT_WEBHOOK_URL`) or the git-ignored `.dlt/secrets.toml`, and it is never logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import SECRET, resolve
from core.paths import Paths
from core.privacy import PrivacySettings
from core.warehouse import DuckDBSettings
from extract.settings import SourceSettings
from recommender.settings import Settings as RecommenderSettings

SECTION = "nightly"


@dataclass(frozen=True)
class NightlySettings:
    """What counts as an anomaly, when data is stale, and who hears about it."""

    # trailing successful runs the volume and duration checks compare with (median and spread)
    history_runs: int = 14
    # successful runs needed before those checks speak; until then they say they are waiting
    min_history_runs: int = 5
    # a row count further from the median than this many robust standard deviations warns...
    volume_warn_sigmas: float = 3.0
    # ...and than this share of the median (so a table that never moved does not warn on +1 row)
    volume_warn_min_share: float = 0.05
    # a row count this share below the median is an error: nothing is published
    volume_error_drop: float = 0.2
    # set for one run to accept a drop that is real (errors become warnings), e.g. a mass deletion
    accept_volume_drop: bool = False
    # a run this many times slower than the median run, and at least duration_warn_min_seconds
    # slower, warns
    duration_warn_factor: float = 2.0
    duration_warn_min_seconds: float = 60.0
    # the last successful load (and publish) older than this is stale: the dead-man's switch
    stale_after_hours: float = 26.0
    # the night's deadline: past it the running step is stopped and the run fails (exit 124)
    night_deadline_minutes: float = 240.0
    # no step may run longer than this share of the night's deadline
    step_deadline_share: float = 0.5
    # free space a night needs in the data folder, checked before it starts (exit 3 if short):
    # free_space_margin x (the largest growth of the folder over the last nights + a publish),
    # and never less than min_free_mb
    min_free_mb: float = 256.0
    free_space_margin: float = 2.0
    # build every dbt model (`dbt build --full-refresh`) and publish every table, whatever
    # changed (`make elt FULL=1`); by default a night builds what its new data reaches
    full_rebuild: bool = False
    # alert on warnings too, not only on failures and data-quality errors
    alert_on_warning: bool = True
    # Slack-style incoming webhook; None: alerts go to the log only
    alert_webhook_url: str | None = field(default=None, repr=False, metadata=SECRET)

    @classmethod
    def from_config(cls) -> NightlySettings:
        """Defaults, overridden by whatever dlt's providers (environment, .dlt/*.toml) hold."""
        return resolve(cls, SECTION)


@dataclass(frozen=True)
class NightConfig:
    """Everything one night needs: where, which API, and each layer's settings."""

    paths: Paths
    nightly: NightlySettings
    source: SourceSettings
    recommender: RecommenderSettings
    privacy: PrivacySettings
    # DuckDB's memory limit and spill folder (section `nightly` too: NIGHTLY__DUCKDB_*); every
    # connection resolves them the same way, this copy is what the run record states
    duckdb: DuckDBSettings = field(default_factory=DuckDBSettings.from_config)

    @classmethod
    def resolve(cls) -> NightConfig:
        """The configured night (what `make elt` runs)."""
        paths = Paths.resolve()
        return cls(
            paths=paths,
            nightly=NightlySettings.from_config(),
            source=SourceSettings.resolve(),
            recommender=RecommenderSettings.from_config(paths),
            privacy=PrivacySettings.from_config(),
        )

    @classmethod
    def for_data_dir(
        cls, data_dir: Path, api_url: str | None = None, **recommender: Any
    ) -> NightConfig:
        """A night in `data_dir` against `api_url` (tests and benchmarks); thresholds configured
        as usual, recommender settings overridden by `recommender` fields."""
        paths = Paths.under(data_dir)
        return cls(
            paths=paths,
            nightly=NightlySettings.from_config(),
            source=SourceSettings(api_url=api_url),
            recommender=RecommenderSettings.from_config(paths, **recommender),
            privacy=PrivacySettings.from_config(),
        )
