"""The recommender's settings in one place: defaults, each overridable by an environment variable.

`Settings.from_env()` reads them once per command; tests build a `Settings` with their own paths.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extract import settings as extract_settings

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


def _env(name: str, default: str) -> str:
    return os.environ.get(f"RECOMMENDER_{name}", default)


@dataclass(frozen=True)
class Settings:
    """Where the recommender reads and writes, and the knobs of scoring, training and the gate."""

    duckdb_path: Path = field(default_factory=lambda: extract_settings.DUCKDB_PATH)
    # versioned artifacts, data/models/<version>/, in the git-ignored data folder
    models_dir: Path = field(default_factory=lambda: extract_settings.DATA_DIR / "models")
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

    @classmethod
    def from_env(cls) -> Settings:
        """Defaults overridden by RECOMMENDER_* variables (RECOMMENDER_CANDIDATES is JSON)."""
        default = cls()
        return cls(
            duckdb_path=default.duckdb_path,
            models_dir=Path(_env("MODELS_DIR", str(default.models_dir))),
            top_k=int(_env("TOP_K", str(default.top_k))),
            promotion_margin=float(_env("PROMOTION_MARGIN", str(default.promotion_margin))),
            promotion_min_z=float(_env("PROMOTION_MIN_Z", str(default.promotion_min_z))),
            retrain_share=float(_env("RETRAIN_SHARE", str(default.retrain_share))),
            retrain_after_days=int(_env("RETRAIN_AFTER_DAYS", str(default.retrain_after_days))),
            holdout_nights=int(_env("HOLDOUT_NIGHTS", str(default.holdout_nights))),
            time_split_min_nights=int(
                _env("TIME_SPLIT_MIN_NIGHTS", str(default.time_split_min_nights))
            ),
            random_holdout_share=float(
                _env("RANDOM_HOLDOUT_SHARE", str(default.random_holdout_share))
            ),
            split_seed=int(_env("SPLIT_SEED", str(default.split_seed))),
            co_listen_neighbours=int(
                _env("CO_LISTEN_NEIGHBOURS", str(default.co_listen_neighbours))
            ),
            candidates=json.loads(_env("CANDIDATES", json.dumps(default.candidates))),
            eval_users=int(_env("EVAL_USERS", str(default.eval_users))),
        )
