"""Listens as sparse matrices, and the train/holdout split that every model is evaluated on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import scipy.sparse as sp

from recommender.settings import Settings
from recommender.warehouse import Listens

EPOCH = datetime(1970, 1, 1)
PAIR_KEY = 1 << 32  # user_id * PAIR_KEY + track_id: one int64 per (user, track), ids < 2**31
# positions() looks ids up in a table over their range when it is at most this many times the
# number of ids (4 bytes per slot: at most 64 MB for 1,000,000 ids), else searches the sorted
# index (the dev API's 1,000,000 user ids span 4.7 M)
_LOOKUP_SPAN = 16


def from_epoch_us(microseconds: int) -> datetime:
    """A naive UTC datetime, like the marts' `_at` columns."""
    return EPOCH + timedelta(microseconds=int(microseconds))


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Interactions:
    """Listen counts as a sparse users x tracks matrix, with the ids of its rows and columns."""

    user_ids: np.ndarray  # sorted, one per row
    track_ids: np.ndarray  # sorted, one per column
    matrix: sp.csr_matrix  # float32 listen counts

    @classmethod
    def from_pairs(
        cls, user_ids: np.ndarray, track_ids: np.ndarray, counts: np.ndarray
    ) -> Interactions:
        """Rows and columns are the distinct ids given; repeated pairs add up."""
        users, tracks = distinct(user_ids), distinct(track_ids)
        # int32, as SciPy keeps them: one int64 temporary the size of the pairs at a time
        rows = positions(user_ids, users).astype(np.int32)
        columns = positions(track_ids, tracks).astype(np.int32)
        matrix = sp.csr_matrix(
            (counts.astype(np.float32, copy=False), (rows, columns)),
            shape=(len(users), len(tracks)),
        )
        matrix.sum_duplicates()
        return cls(users, tracks, matrix)

    @property
    def listens(self) -> int:
        return int(self.matrix.sum())

    def on_tracks(self, track_ids: np.ndarray) -> sp.csr_matrix:
        """The matrix with its columns laid on another sorted track index; other tracks dropped.

        Remapped in place of the CSR arrays (both indexes are sorted, so each row's columns stay
        sorted): no COO copy, which at 1,000,000 users costs hundreds of MB.
        """
        columns = positions(self.track_ids, track_ids)[self.matrix.indices]
        kept = columns >= 0
        indptr = np.concatenate([[0], np.cumsum(kept)])[self.matrix.indptr]
        return sp.csr_matrix(
            (self.matrix.data[kept], columns[kept].astype(np.int32), indptr),
            shape=(self.matrix.shape[0], len(track_ids)),
        )


def distinct(values: np.ndarray) -> np.ndarray:
    """np.unique(values), by a sort: NumPy 2's hash table, which np.unique and np.isin use, took
    13 s for 16 M user ids where a sort takes 1 s (46 s against 0.2 s for 16 M (user, track)
    pairs)."""
    ordered = np.sort(values, axis=None)
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    return ordered[first]


def contains(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """np.isin(values, among), by a sort and a binary search (see `distinct`)."""
    ordered = np.sort(among, axis=None)
    if not len(ordered):
        return np.zeros(np.shape(values), dtype=bool)
    return ordered[_search(ordered, values).clip(max=len(ordered) - 1)] == values


def positions(ids: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Position of each id in a sorted index, -1 where it is absent.

    Ids spanning a range at most _LOOKUP_SPAN times the index's size (the warehouse's user and
    track ids) are looked up in a table over that range: 0.2 s for 17 M ids where the sorted
    search takes 4 to 5 s."""
    if not len(index):
        return np.full(len(ids), -1)
    ids = np.asarray(ids)
    low, high = int(index[0]), int(index[-1])
    if ids.dtype.kind == "i" and high - low < _LOOKUP_SPAN * len(index) < 2**31:
        table = np.full(high - low + 2, -1, dtype=np.int32)  # the last slot: outside the range
        table[index - low] = np.arange(len(index))
        # one int64 temporary the size of `ids`, reused (17 M ids at 1,000,000 users)
        slots = np.array(ids, dtype=np.int64, ndmin=1)
        slots -= low
        slots[(slots < 0) | (slots > high - low)] = high - low + 1
        np.copyto(slots, table[slots])
        return slots.reshape(ids.shape)
    found = _search(index, ids).clip(max=len(index) - 1)
    return np.where(index[found] == ids, found, -1)


def _search(ordered: np.ndarray, values: np.ndarray) -> np.ndarray:
    """np.searchsorted(ordered, values), the values searched in their sorted order: searched in
    random order, each search strays over the index, and 16 M pairs took 28 s in 12.8 M against
    3.2 s sorted first (NumPy starts each search from where the previous one ended)."""
    flat = np.ravel(values)
    by_value = np.argsort(flat)
    found = np.empty(len(flat), dtype=np.intp)
    found[by_value] = np.searchsorted(ordered, flat[by_value])
    return found.reshape(np.shape(values))


@dataclass(frozen=True)
class Split:
    """Train listens and held-out (user, track) pairs: the same holdout for every model.

    The holdout holds, for each user, tracks absent from their training listens (models never
    recommend a played track); its rows are the training matrix's users.
    """

    kind: Literal["time", "random"]
    train: Interactions
    holdout: Interactions
    window_start_at: datetime
    window_end_at: datetime
    holdout_start_at: datetime | None  # the cutoff of a time split

    def evaluation_rows(self, sample: int | None = None, seed: int = 0) -> np.ndarray:
        """Rows of the users with both training listens and held-out tracks; at most `sample`
        of them, a seeded uniform draw (sorted), when given."""
        rows = np.flatnonzero(
            (np.diff(self.train.matrix.indptr) > 0) & (np.diff(self.holdout.matrix.indptr) > 0)
        )
        if sample is None or len(rows) <= sample:
            return rows
        return np.sort(np.random.default_rng(seed).choice(rows, size=sample, replace=False))

    def new_user_rows(self) -> np.ndarray:
        """Rows of the users with held-out tracks and no training listens: new users, whom the
        recommender can only answer with a cold start."""
        return np.flatnonzero(
            (np.diff(self.train.matrix.indptr) == 0) & (np.diff(self.holdout.matrix.indptr) > 0)
        )


def split(listens: Listens, settings: Settings, champion_window_end: datetime | None) -> Split:
    """Time split when enough loads brought listens, else a seeded random share per user.

    A time split's holdout starts after the champion's data window, so that the champion is
    measured on listens it never saw; if no load came after it, the split is random (the hash
    holds out the same pairs as when the champion was trained, so those it never saw either).
    """
    loads = distinct(listens.first_seen_us)
    if champion_window_end is not None:
        unseen = loads[loads > int((champion_window_end - EPOCH) / timedelta(microseconds=1))]
    else:
        unseen = loads
    if len(loads) >= settings.time_split_min_nights and len(unseen):
        cutoff = max(loads[-settings.holdout_nights], unseen[0])
        return _split(listens, listens.first_seen_us < cutoff, "time", from_epoch_us(cutoff))
    return _split(listens, _random_train(listens, settings.split_seed, settings), "random", None)


def training_window(listens: Listens, data: Split, settings: Settings) -> Listens:
    """The listens `data` trains on, as `split` chose them: what a validation split is carved
    from (kept instead of every listen, the holdout's too, while the models are tuned)."""
    if data.kind == "time":
        in_train = listens.first_seen_us < _epoch_us(data.holdout_start_at)
    else:
        in_train = _random_train(listens, settings.split_seed, settings)
    return Listens(*(column[in_train] for column in vars(listens).values()))


def validation_split(window: Listens, settings: Settings) -> Split:
    """A split carved from a split's training listens only (`training_window`), to choose
    hyper-parameters on.

    The holdout that decides promotion stays unseen: the validation set holds out the tracks
    first played in the training window's last load (or, with a single load, a seeded share of
    each user's tracks with another seed than the holdout's).
    """
    loads = distinct(window.first_seen_us)
    if len(loads) >= 2:
        cutoff = loads[-1]
        return _split(window, window.first_seen_us < cutoff, "time", from_epoch_us(cutoff))
    return _split(window, _random_train(window, settings.split_seed + 1, settings), "random", None)


def _random_train(listens: Listens, seed: int, settings: Settings) -> np.ndarray:
    """The listens a seeded random split trains on: the same pairs in every run."""
    held_out = _unit_hash(listens.user_ids, listens.track_ids, seed)
    return held_out >= settings.random_holdout_share


def _epoch_us(moment: datetime | None) -> int:
    assert moment is not None, "a time split has a cutoff"
    return int((moment - EPOCH) / timedelta(microseconds=1))


def _split(
    listens: Listens,
    in_train: np.ndarray,
    kind: Literal["time", "random"],
    cutoff: datetime | None,
) -> Split:
    users = distinct(listens.user_ids)
    # the holdout keeps only the tracks new to each user: a played track is never recommended
    pairs = listens.user_ids * PAIR_KEY + listens.track_ids
    held_out = ~in_train & ~contains(pairs, pairs[in_train])
    first_seen = listens.first_seen_us[in_train]
    return Split(
        kind=kind,
        train=_interactions(users, listens, in_train),
        holdout=_interactions(users, listens, held_out),
        window_start_at=from_epoch_us(first_seen.min()),
        window_end_at=from_epoch_us(first_seen.max()),
        holdout_start_at=cutoff,
    )


def _interactions(users: np.ndarray, listens: Listens, selected: np.ndarray) -> Interactions:
    """The selected listens on the given user rows, with their own track columns."""
    tracks = distinct(listens.track_ids[selected])
    rows = positions(listens.user_ids[selected], users)
    columns = positions(listens.track_ids[selected], tracks)
    matrix = sp.csr_matrix(
        (listens.listens[selected], (rows, columns)), shape=(len(users), len(tracks))
    )
    matrix.sum_duplicates()
    return Interactions(users, tracks, matrix)


def _unit_hash(user_ids: np.ndarray, track_ids: np.ndarray, seed: int) -> np.ndarray:
    """A uniform number in [0, 1) per (user, track, seed), the same in every run (splitmix64)."""
    with np.errstate(over="ignore"):
        value = (
            user_ids.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            + track_ids.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
            + np.uint64(seed)
        )
        value ^= value >> np.uint64(30)
        value *= np.uint64(0xBF58476D1CE4E5B9)
        value ^= value >> np.uint64(27)
        value *= np.uint64(0x94D049BB133111EB)
        value ^= value >> np.uint64(31)
    return (value >> np.uint64(11)).astype(np.float64) / float(1 << 53)
