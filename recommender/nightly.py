"""The recommender's training in the nightly job: the `training` step, after `dbt build` and the
checks and before `scoring`, calls `train_if_due`; `scoring` (recommender.scoring.score) then
scores once, with whatever champion training left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from recommender.data import utc_now
from recommender.settings import Settings
from recommender.training import TrainingReport, train
from recommender.warehouse import champion, listens_first_seen_after, model_versions


@dataclass(frozen=True)
class Retraining:
    """Whether a training run is due tonight, and why (or why not)."""

    due: bool
    reason: str


@dataclass(frozen=True)
class NightlyTraining:
    """What the night's training step did: `message` says why it trained, or why not (no
    retraining due, or tonight's data refused); `report` is the training run, when one ran."""

    message: str
    report: TrainingReport | None = None

    def render(self) -> str:
        """The night's summary lines: the message, then the training run's table."""
        return self.message if self.report is None else f"{self.message}\n{self.report.render()}"

    def summary(self) -> str:
        """One line for the run record: the message and, after a training run, its verdict."""
        if self.report is None:
            return self.message
        after = self.report.champion_after
        assert after is not None, "a training run always leaves a champion"
        return (
            f"{self.message} {len(self.report.registered)} version(s) registered; champion "
            f"v{after.model_version} ({after.model_name}) "
            + ("promoted" if self.report.promoted else "kept")
        )


def train_if_due(
    settings: Settings,
    refused: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> NightlyTraining:
    """Train when there is no champion yet (a fresh warehouse's bootstrap) or when `retraining`
    says a run is due; otherwise say why not. With `refused` (why tonight's data failed its
    checks) it trains nothing and says why: no model learns from data that failed its checks.
    `progress` receives each sub-step and progress report of the training run."""
    if refused:
        version = champion(settings.duckdb_path)
        kept = (
            f"champion v{version.model_version} ({version.model_name}) stays"
            if version
            else "there is no champion yet"
        )
        return NightlyTraining(f"{refused}: no training on data that failed its checks; {kept}")
    decision = retraining(settings)
    if not decision.due:
        return NightlyTraining(f"No retraining due: {decision.reason}.")
    return NightlyTraining(f"Training: {decision.reason}.", train(settings, progress))


def retraining(settings: Settings) -> Retraining:
    """Whether a training run is due tonight, and why (or why not).

    Due when there is no champion yet (bootstrap), when the latest training run is
    `retrain_after_days` old, or when the listens first seen after its data window exceed
    `retrain_share` of those it trained on. Counted from the latest run rather than the
    champion's: a candidate the gate rejected is not retried every night.
    """
    database = settings.duckdb_path
    if champion(database) is None:
        return Retraining(True, "no champion yet, a bootstrap training run picks the first")
    latest = model_versions(database)[-1]
    age = utc_now() - latest.trained_at
    every = f"retrain every {settings.retrain_after_days}"
    if age >= timedelta(days=settings.retrain_after_days):
        return Retraining(True, f"the latest training run is {age.days} days old ({every})")
    new_listens = listens_first_seen_after(database, latest.window_end_at)
    share = new_listens / max(latest.train_listens, 1)
    listens = (
        f"{new_listens:,} listens appeared after the latest run's data window, {share:.0%} of "
        f"the {latest.train_listens:,} it trained on (threshold {settings.retrain_share:.0%})"
    )
    if share > settings.retrain_share:
        return Retraining(True, listens)
    return Retraining(
        False, f"the latest training run is {age.days} days old ({every}) and {listens}"
    )
