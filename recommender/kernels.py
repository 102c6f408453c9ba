"""Compiled kernels (Numba): the loops NumPy and implicit cannot do in bulk.

Co-listen's top k: a user's score for a track is the sum, over the tracks they played, of their
listen count times the similarity of the played track to it, and the recommendations are the k
best positive scores among the tracks they did not play. implicit's scorer does this one user per
call: at 1,000,000 users its per-call cost (the Python call, its memoryviews, its result arrays,
the GIL between threads) made scoring everyone take longer than extracting the night's data. Here
a batch of users is scored in one call, its users shared between the cores, each core with one
dense accumulator reset track by track; a user's scores are the same whatever batch they are in.

Numba compiles on first use and caches the machine code beside this file (`__pycache__`), so a
process pays about 5 s once per signature; `make install` warms the cache (`python -m
recommender.kernels`), and a cold cache only costs that time, never a result.
"""

from __future__ import annotations

import numba
import numpy as np

# each core scores this many shares of a batch in turn (uneven users even out)
_SHARES_PER_THREAD = 8


def co_listen_top_k(
    rows: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    similarity_indptr: np.ndarray,
    similarity_indices: np.ndarray,
    similarity: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(columns, scores) of the `rows` of a users x tracks CSR matrix (`indptr`, `indices`,
    `weights`): the `k` best positive scores of `user row @ similarity` (CSR, tracks x tracks)
    among the columns the row does not hold, best first, ties by the smaller column; -1 and 0
    past the end. Arrays as `warm` passes them (another dtype compiles another signature).

    Each score is summed in the order of the row's columns, as SciPy's product sums it, so it
    equals `(user_items @ similarity)` to the last bit.
    """
    # compiled code indexes without bounds checks: a row past the matrix would read any memory
    if k < 1 or (len(rows) and not 0 <= rows.min() <= rows.max() < len(indptr) - 1):
        raise ValueError(
            f"co_listen_top_k: k {k} (at least 1), rows {rows.min() if len(rows) else '-'} to "
            f"{rows.max() if len(rows) else '-'} of a matrix of {len(indptr) - 1} rows"
        )
    shares = numba.get_num_threads() * _SHARES_PER_THREAD
    return _co_listen_top_k(
        rows, indptr, indices, weights, similarity_indptr, similarity_indices, similarity, k, shares
    )


# (numba.get_num_threads() inside a compiled function keeps it out of the cache: `shares` is
# passed in)
@numba.njit(parallel=True, nogil=True, cache=True)
def _co_listen_top_k(
    rows: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    similarity_indptr: np.ndarray,
    similarity_indices: np.ndarray,
    similarity: np.ndarray,
    k: int,
    shares: int,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover (compiled: tested through its callers)
    """co_listen_top_k, its users in `shares` parts that the cores take in turn."""
    users = len(rows)
    tracks = len(similarity_indptr) - 1
    columns = np.full((users, k), -1, dtype=np.int64)
    scores = np.zeros((users, k), dtype=similarity.dtype)
    for share in numba.prange(shares):
        total = np.zeros(tracks, dtype=similarity.dtype)
        reached = np.zeros(tracks, dtype=np.bool_)
        played = np.zeros(tracks, dtype=np.bool_)
        candidates = np.empty(tracks, dtype=np.int64)
        for at in range(share * users // shares, (share + 1) * users // shares):
            first, last = indptr[rows[at]], indptr[rows[at] + 1]
            count = 0
            for entry in range(first, last):
                track = indices[entry]
                played[track] = True
                for neighbour in range(similarity_indptr[track], similarity_indptr[track + 1]):
                    other = similarity_indices[neighbour]
                    if not reached[other]:
                        reached[other] = True
                        candidates[count] = other
                        count += 1
                    total[other] += weights[entry] * similarity[neighbour]
            found = 0
            for candidate in range(count):
                other = candidates[candidate]
                value = total[other]
                total[other] = 0
                reached[other] = False
                if value <= 0 or played[other]:
                    continue
                if found < k:
                    slot = found
                    found += 1
                elif value > scores[at, k - 1] or (
                    value == scores[at, k - 1] and other < columns[at, k - 1]
                ):
                    slot = k - 1
                else:
                    continue
                # insertion into the row's k best, kept sorted (k is small)
                while slot > 0 and (
                    scores[at, slot - 1] < value
                    or (scores[at, slot - 1] == value and columns[at, slot - 1] > other)
                ):
                    scores[at, slot] = scores[at, slot - 1]
                    columns[at, slot] = columns[at, slot - 1]
                    slot -= 1
                scores[at, slot] = value
                columns[at, slot] = other
            for entry in range(first, last):
                played[indices[entry]] = False
    return columns, scores


def warm() -> None:
    """Compile (or load from the cache) the one signature the models score with, as CoListen
    passes its arrays: int64 rows and row pointers, int32 columns, float64 weights."""
    rows = np.arange(2, dtype=np.int64)
    indptr = np.array([0, 1, 2], dtype=np.int64)
    indices = np.array([0, 1], dtype=np.int32)
    ones = np.ones(2, dtype=np.float64)
    co_listen_top_k(rows, indptr, indices, ones, indptr, indices[::-1].copy(), ones, 1)


if __name__ == "__main__":
    warm()
