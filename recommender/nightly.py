"""The recommender's part of the nightly job, run after `dbt build` and the checks: score, then
maybe retrain. The nightly job's `scoring` step calls `run`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from recommender.data import utc_now
from recommender.scoring import ScoringReport, score
from recommender.settings import Settings
from recommender.training import train
from recommender.warehouse import listens_first_seen_after, model_versions


@dataclass(frozen=True)
class NightlyReport:
    """The recommender's lines of the night's summary; `scored` is False on refused data."""

    scored: bool
    lines: tuple[str, ...]
    scorings: tuple[ScoringReport, ...]  # tonight's scoring, and the one after a promotion

    def render(self) -> str:
        return "\n".join(self.lines)


def run(
    settings: Settings,
    refused: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> NightlyReport:
    """Score every user with the champion (training one first on a fresh warehouse), then
    retrain when `retrain_due` says so, and score again if the retraining promoted a model.
    With `refused` (why tonight's data failed its checks) it scores nothing and says why.
    `progress` receives each sub-step and progress report of the scoring and training."""
    scorings = [score(settings, refused, progress)]
    lines = [scorings[0].render()]
    if not scorings[0].scored:
        return NightlyReport(False, tuple(lines), tuple(scorings))
    reason = retrain_due(settings)
    if reason is None:
        lines.append("No retraining due.")
        return NightlyReport(True, tuple(lines), tuple(scorings))
    training = train(settings, progress)
    lines += [f"Retraining: {reason}.", training.render()]
    if training.promoted:
        scorings.append(score(settings, progress=progress))
        lines.append(scorings[-1].render())
    return NightlyReport(True, tuple(lines), tuple(scorings))


def retrain_due(settings: Settings) -> str | None:
    """Why a training run is due tonight, or None.

    Due when the latest training run is `retrain_after_days` old, or when the listens first seen
    after its data window exceed `retrain_share` of those it trained on. Counted from the latest
    run rather than the champion's: a candidate the gate rejected is not retried every night.
    """
    versions = model_versions(settings.duckdb_path)
    if not versions:
        return "no model has been trained yet"
    latest = versions[-1]
    age = utc_now() - latest.trained_at
    if age >= timedelta(days=settings.retrain_after_days):
        return (
            f"the latest training run is {age.days} days old "
            f"(retrain every {settings.retrain_after_days})"
        )
    new_listens = listens_first_seen_after(settings.duckdb_path, latest.window_end_at)
    share = new_listens / max(latest.train_listens, 1)
    if share > settings.retrain_share:
        return (
            f"{new_listens:,} listens appeared after the latest run's data window, {share:.0%} of "
            f"the {latest.train_listens:,} it trained on (threshold {settings.retrain_share:.0%})"
        )
    return None
