"""The recommender's settings in one place: defaults, each overridable like every other setting.

`Settings.from_config(paths)` resolves them through core.config (section `recommender`:
environment `RECOMMENDER__TOP_K=10`, or `[recommender] top_k = 10` in `.dlt/config.toml`); the
older `RECOMMENDER_TOP_K` form still works, with a deprecation warning. Tests build a `Settings`
with their own paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import SettingsError, resolve
from core.paths import Paths

SECTION = "recommender"
LEGACY_ENV_PREFIX = "RECOMMENDER_"  # RECOMMENDER_TOP_K, before sections: deprecated

# The candidates every training run fits and evaluates beside the baselines, by name: a model
# kind of recommender/models.py (als, or co_listen for an item-item candidate) and its
# hyper-parameters; a list is a grid the run tunes on a validation split carved from its
# training window (never on the holdout). ALS on BM25-weighted counts; few iterations and
# factors generalised best on the dev API's data. co_listen_tilted: item-item neighbours leaning
# towards popular tracks, which the dev API's listens mix in (recommender/README.md).
DEFAULT_CANDIDATES: dict[str, dict[str, Any]] = {
    "als": {
        "kind": "als",
        "factors": 48,
        "regularization": 0.05,
        "alpha": 1.0,
        "iterations": 3,
        "bm25_k1": 100.0,
        "bm25_b": 0.8,
        "random_state": 42,
    },
    "co_listen_tilted": {
        "kind": "co_listen",
        "neighbours": 200,
        "popularity_exponent": [0.1, 0.2, 0.3],
    },
}


@dataclass(frozen=True)
class Settings:
    """Where the recommender reads and writes, and the knobs of scoring, training and the gate."""

    # the private warehouse (core.paths.Paths.warehouse)
    duckdb_path: Path
    # versioned artifacts, data/models/<version>/ (core.paths.Paths.models_dir)
    models_dir: Path
    # recommendations kept per user each night
    top_k: int = 20
    # a candidate is promoted only if its recall@10 is this share above the champion's and the
    # popularity baseline's, and the per-user gain is `promotion_min_z` standard errors above 0
    # (so noise, e.g. on the real service's uniformly random listens, does not promote a model)
    promotion_margin: float = 0.05
    promotion_min_z: float = 2.0
    # the nightly run retrains when the listens first seen after the latest training run's
    # data window exceed this share of those it trained on, or that run is this many days old
    retrain_share: float = 0.2
    retrain_after_days: int = 7
    # time split: the holdout is the listens of the last `holdout_nights` loads; it needs at
    # least `time_split_min_nights` loads with new listens, else a random share of each user's
    # tracks is held out (the same pairs in every run: a hash of user, track and split_seed)
    holdout_nights: int = 2
    time_split_min_nights: int = 4
    random_holdout_share: float = 0.2
    split_seed: int = 42
    # neighbours kept per track by the item-item co-listen baseline
    co_listen_neighbours: int = 100
    candidates: dict[str, dict[str, Any]] = field(default_factory=lambda: DEFAULT_CANDIDATES)
    # users every model is evaluated on (a seeded sample of those with held-out tracks): the
    # gate's standard error of recall@10 is about 0.3 / sqrt(eval_users), 0.13% at 50,000
    eval_users: int = 50_000
    # re-score every user tonight, not only those whose listens changed since the last scoring
    # by the same champion (RECOMMENDER__FULL_RESCORE=true, or `score --full`)
    full_rescore: bool = False

    def __post_init__(self) -> None:
        """Refuse values the split cannot honour, naming the setting (not an IndexError later)."""
        if not 1 <= self.holdout_nights < self.time_split_min_nights:
            raise SettingsError(
                f"recommender.holdout_nights is {self.holdout_nights}: it must be at least 1 and "
                f"below recommender.time_split_min_nights ({self.time_split_min_nights}), the "
                "loads a time split needs, so that at least one load is left to train on"
            )
        if not 0 < self.random_holdout_share < 1:
            raise SettingsError(
                f"recommender.random_holdout_share is {self.random_holdout_share}: it must be "
                "between 0 and 1"
            )

    @classmethod
    def from_config(cls, paths: Paths, **given: Any) -> Settings:
        """Defaults overridden by configured values (and `given` ones), on `paths`' files."""
        defaults = {"models_dir": paths.models_dir}
        return resolve(
            cls, SECTION, LEGACY_ENV_PREFIX, defaults, **{"duckdb_path": paths.warehouse, **given}
        )
