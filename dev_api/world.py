"""Deterministic, lazily derived data model of the fake MooVitamix service.

Every record is computed on demand from its index with a per-record RNG seeded
by a stable hash of (seed, stream, index), so memory stays constant whatever
the data set size, and the same arguments always give byte-identical pages.

Calendar: day D is the morning of 2026-01-01 + D days; it serves the state at
that midnight. The initial data (day 0) was created over the two years before
2026-01-01. Changes that appear on day D >= 1 carry timestamps from the 24 h
before that midnight, except late arrivals, back-dated by up to two more days.

Taste: every user has a favourite genre (their `favorite_genres`) and, hidden from the API, one of
that genre's 8 to 20 taste communities (seeded; community c draws fans in proportion to 1/(c+1)).
A community ranks the genre's tracks in its own order (a seeded permutation of the genre's initial
tracks; newer tracks follow in release order) and favours them by a steep Zipf over that order.
A listen comes from the user's community (COMMUNITY_SHARE), the genre's popularity (GENRE_SHARE)
or all tracks' popularity (the rest), among the tracks existing that day. Only co-listening reveals
the community, so a learned recommender can beat "the favourite genre's most popular tracks".
World.listen_probabilities gives the exact mixture, World.taste_of the community: evaluation only.
"""

import random
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import lru_cache
from itertools import accumulate, islice
from math import gcd, log
from typing import Any, Literal, get_args

Endpoint = Literal["users", "tracks", "listen_history"]
ENDPOINTS: tuple[Endpoint, ...] = get_args(Endpoint)
KEY_FIELD: dict[Endpoint, str] = {"users": "id", "tracks": "id", "listen_history": "user_id"}
Record = dict[str, Any]

ANCHOR = datetime(2026, 1, 1)
MAX_DAY = 730  # id spaces are sized for this many simulated days
MINUTE = 60_000_000  # times are integer microseconds relative to ANCHOR
HOUR = 60 * MINUTE
DAY = 24 * HOUR
HISTORY = 730 * DAY  # the initial data was created during this span before ANCHOR
ID_RANGE = 100_000  # real ids are random integers in 1..100000

SIGNUP_RATE = 0.005  # new users per day, as a share of the initial users
NEW_TRACK_RATE = 0.003  # new tracks per day, as a share of the initial tracks
DELETE_RATE = 0.002  # chance that a live user is deleted on a given day
EDIT_RATE = 0.01  # chance that a user edits their profile on a given day
LISTEN_DAY_RATE = 0.3  # chance that a user's history grows on a given day
MAX_LISTENS_PER_DAY = 5
LATE_SHARE = 0.1  # share of changes whose timestamp is back-dated
QUIRK_SHARE = 0.03  # share of users and tracks with updated_at < created_at
COMMUNITY_SHARE = 0.55  # share of listens drawn from the user's taste community
GENRE_SHARE = 0.25  # share drawn from the favourite genre's popularity; the rest from all tracks
FAVOURITE_SHARE = COMMUNITY_SHARE + GENRE_SHARE  # listens drawn within the favourite genre
COMMUNITIES_PER_GENRE = (8, 20)  # each genre has a seeded number of taste communities in this range
ZIPF_EXPONENT = 1.1  # popularity skew, within a genre and overall
COMMUNITY_ZIPF_EXPONENT = 1.3  # a community's skew over its own order of the genre's tracks
TWO_GENRE_SHARE = 0.05
FREE_WORD_GENRE_SHARE = 0.02
CATALOGUE_PERIOD = 1000  # the genre layout of popularity positions repeats with this period

GENRE_WEIGHTS: dict[str, int] = {
    "Rock": 12, "Pop": 14, "Hip Hop": 11, "Jazz": 4, "Electronic": 8, "Classical": 4,
    "Country": 5, "Blues": 3, "R&B": 6, "Reggae": 3, "Folk": 4, "Metal": 5, "Punk": 2,
    "Funk": 2, "Indie": 7, "Alternative": 6, "Techno": 4,
}  # fmt: skip
GENRES = tuple(GENRE_WEIGHTS)
FREE_GENRE_WORDS = (
    "southern",
    "party",
    "chill",
    "lofi",
    "soul",
    "gospel",
    "latin",
    "ambient",
    "world",
    "disco",
)
GENDER_WEIGHTS: dict[str, float] = {
    "Male": 45, "Female": 45, "Non-binary": 2, "Genderqueer": 1.5, "Genderfluid": 1.5,
    "Agender": 1.5, "Bigender": 1, "Gender questioning": 1.5, "Gender nonconforming": 1,
}  # fmt: skip
FIRST_NAMES = (
    "Philip", "Michelle", "Denise", "Steve", "Diana", "Sandra", "Brooke", "Charles", "April",
    "James", "Maria", "Robert", "Linda", "David", "Susan", "Kevin", "Laura", "Jason", "Karen",
    "Brian", "Emily", "Daniel", "Jessica", "Mark", "Sarah", "Paul", "Nancy", "Eric", "Lisa",
    "Adam", "Olivia", "Noah", "Emma", "Liam", "Sofia", "Lucas", "Chloe", "Ethan", "Grace", "Omar",
)  # fmt: skip
LAST_NAMES = (
    "Warren", "Wilson", "Wagner", "Sandoval", "Olson", "Moreno", "Curry", "Orr", "Harmon",
    "Gibson", "Blanchard", "Barrera", "Smith", "Johnson", "Brown", "Garcia", "Miller", "Davis",
    "Lopez", "Clark", "Lewis", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres",
    "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell",
    "Mitchell", "Carter",
)  # fmt: skip
WORDS = (
    "best", "article", "future", "usually", "myself", "become", "river", "midnight", "golden",
    "echo", "paper", "summer", "shadow", "signal", "harbor", "velvet", "window", "static", "ember",
    "orbit", "morning", "wild", "silver", "garden", "motion", "neon", "hollow", "thunder", "ocean",
    "letter", "simple", "fever", "glass", "winter", "highway", "mirror", "stone", "satellite",
    "honey", "crown",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")


class _Stream:
    """Tags that separate the independent random streams derived from one seed."""

    USER, USER_EDITS, LISTENS, TASTE, TRACK, USER_GROWTH, TRACK_GROWTH, LAYOUT, IDS = range(1, 10)
    COMMUNITIES = 10


_MASK64 = (1 << 64) - 1


def _mix(value: int) -> int:
    """splitmix64 finaliser: a stable 64-bit hash (unlike the salted built-in hash())."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _hash(seed: int, stream: int, index: int) -> int:
    return _mix(_mix(_mix(seed & _MASK64) ^ stream) ^ index)


def _rng(seed: int, stream: int, index: int) -> random.Random:
    return random.Random(_hash(seed, stream, index))


def _cumulative(weights: dict[str, float]) -> tuple[tuple[str, ...], list[float]]:
    total = 0.0
    cumulative = []
    for weight in weights.values():
        total += weight
        cumulative.append(total)
    return tuple(weights), cumulative


_GENRE_CHOICES = _cumulative(GENRE_WEIGHTS)
_GENDER_CHOICES = _cumulative(GENDER_WEIGHTS)


def _weighted(unit: float, choices: tuple[tuple[str, ...], list[float]]) -> str:
    """Pick a value with probability proportional to its weight, from a uniform draw in [0, 1)."""
    values, cumulative = choices
    return values[bisect_right(cumulative, unit * cumulative[-1])]


def _gap(rng: random.Random, log_stay: float) -> int:
    """Days until the next event of a daily Bernoulli process; log_stay = log(1 - daily rate)."""
    return 1 + int(log(1.0 - rng.random()) / log_stay)


_LOG_STAY_EDIT = log(1.0 - EDIT_RATE)
_LOG_STAY_LISTEN = log(1.0 - LISTEN_DAY_RATE)


def _event_time(rng: random.Random, day: int, previous: int) -> int:
    """Time of a change that reaches the API on `day`, kept after the record's `previous` time."""
    window_start = (day - 1) * DAY
    if rng.random() < LATE_SHARE:
        time = window_start - rng.randrange(HOUR, 2 * DAY)
    else:
        time = window_start + rng.randrange(DAY)
    return max(time, previous + 1)


def _created_at(rng: random.Random, cohort_day: int) -> int:
    """Creation time of a record that first appears on `cohort_day` (0 = the initial data)."""
    if cohort_day == 0:
        return -rng.randrange(1, HISTORY)
    return _event_time(rng, cohort_day, -HISTORY)


def _first_updated_at(rng: random.Random, created: int, cohort_day: int) -> int:
    """updated_at before any edit; sometimes before created_at, a quirk of the real service."""
    if rng.random() < QUIRK_SHARE:
        return created - rng.randrange(MINUTE, 180 * DAY)
    if cohort_day == 0:
        return rng.randrange(created, 0)
    return created


def _iso(time: int) -> str:
    return (ANCHOR + timedelta(microseconds=time)).isoformat(timespec="microseconds")


def _email(rng: random.Random, first: str, last: str) -> str:
    style = rng.randrange(3)
    if style == 0:
        local = f"{last}{first}"
    elif style == 1:
        local = f"{first}.{last}"
    else:
        local = f"{first[0]}{last}{rng.randrange(10, 100)}"
    return f"{local.lower()}@{rng.choice(EMAIL_DOMAINS)}"


def _zipf_span(count: int, exponent: float = ZIPF_EXPONENT) -> float:
    """Normaliser of the continuous Zipf law on [1, count + 1) used to rank `count` items."""
    return (count + 1) ** (1.0 - exponent) - 1.0


def _zipf_probability(rank: int, span: float, exponent: float = ZIPF_EXPONENT) -> float:
    """Exact probability of `rank` when ranks are drawn as _draw_listens does.

    A rank in 0..count-1 is drawn from a uniform `unit` by the continuous inverse CDF, floored:
    int((1 + unit * span) ** (1 / (1 - exponent))) - 1, capped at count - 1.
    """
    return ((rank + 2) ** (1.0 - exponent) - (rank + 1) ** (1.0 - exponent)) / span


class _Growth:
    """Index ranges ("cohorts") of one kind of entity, drawn once per day up to MAX_DAY.

    Cohort 0 is the initial data; cohort d appeared on day d, appended after all earlier ones.
    """

    def __init__(self, initial: int, daily_rate: float, seed: int, stream: int) -> None:
        self.starts = [0, initial]  # cohort d holds indexes starts[d] .. starts[d + 1] - 1
        mean = initial * daily_rate
        for day in range(1, MAX_DAY + 1):
            rng = _rng(seed, stream, day)
            expected = mean * rng.uniform(0.5, 1.5)
            self.starts.append(self.starts[-1] + int(expected) + (rng.random() < expected % 1))

    def created(self, day: int) -> int:
        """How many entities have been created up to and including `day`."""
        return self.starts[day + 1]

    def cohort_of(self, index: int) -> int:
        return bisect_right(self.starts, index) - 1


class _IdSpace:
    """Affine permutation index -> id in 1..modulus: ids look random, are unique, never change."""

    def __init__(self, capacity: int, rng: random.Random) -> None:
        self.modulus = max(ID_RANGE, capacity)
        self.factor = rng.randrange(self.modulus // 3, self.modulus)
        while gcd(self.factor, self.modulus) != 1:
            self.factor += 1
        self.offset = rng.randrange(self.modulus)
        self.inverse = pow(self.factor, -1, self.modulus)

    def id_of(self, index: int) -> int:
        return (index * self.factor + self.offset) % self.modulus + 1

    def index_of(self, id_: int) -> int:
        return (id_ - 1 - self.offset) * self.inverse % self.modulus


def _floor_sum(count: int, modulus: int, factor: int, offset: int) -> int:
    """Sum of floor((factor * i + offset) / modulus) for i in 0..count-1, in O(log modulus)."""
    total = 0
    while True:
        if factor >= modulus:
            total += (count - 1) * count // 2 * (factor // modulus)
            factor %= modulus
        if offset >= modulus:
            total += count * (offset // modulus)
            offset %= modulus
        top = factor * count + offset
        if top < modulus:
            return total
        count, offset, modulus, factor = top // modulus, top % modulus, factor, modulus


class _Deletions:
    """Decides which users are deleted by a given day, so that they can be counted in O(log n).

    Each user gets a key, an affine permutation of its index modulo 2**32 (equidistributed like a
    Weyl sequence). A user of cohort c is deleted by day D when its key is below a threshold that
    grows with D - c, so the deleted set only grows, and counting deleted indexes in a range is a
    lattice-point count (a floor sum) rather than a scan.
    """

    MODULUS = 1 << 32

    def __init__(self, rng: random.Random) -> None:
        self.factor = rng.randrange(1 << 31, 1 << 32) | 1
        self.offset = rng.randrange(self.MODULUS)

    def key(self, index: int) -> int:
        return (index * self.factor + self.offset) & (self.MODULUS - 1)

    def threshold(self, cohort_day: int, day: int) -> int:
        exposure = day - cohort_day
        return int(self.MODULUS * (1.0 - (1.0 - DELETE_RATE) ** exposure)) if exposure > 0 else 0

    def deleted_before(self, end: int, threshold: int) -> int:
        """How many indexes in 0..end-1 have a key below `threshold`."""
        # [x mod m < t] == floor(x / m) - floor((x - t + m) / m) + 1 for 0 <= t <= m
        return (
            end
            + _floor_sum(end, self.MODULUS, self.factor, self.offset)
            - _floor_sum(end, self.MODULUS, self.factor, self.offset - threshold + self.MODULUS)
        )

    def live_between(self, start: int, end: int, threshold: int) -> int:
        return (
            end
            - start
            - self.deleted_before(end, threshold)
            + self.deleted_before(start, threshold)
        )

    def nth_live(self, start: int, end: int, threshold: int, rank: int) -> int:
        """Index of the live user with 0-based `rank` among indexes start..end-1 (binary search)."""
        # Search the smallest `stop` such that start..stop-1 holds rank + 1 live users.
        low, high = start + rank + 1, end
        while low < high:
            middle = (low + high) // 2
            if self.live_between(start, middle, threshold) > rank:
                high = middle
            else:
                low = middle + 1
        return low - 1


class _Catalogue:
    """Track popularity and genres, derived arithmetically so no per-track table is ever built.

    Tracks are ranked by a popularity position: position 0 is the most listened track. The initial
    catalogue's positions are a shuffle of its indexes; tracks added later take the next positions.
    The genre of a position follows a fixed shuffled layout repeating every CATALOGUE_PERIOD
    positions (genre shares as GENRE_WEIGHTS), which makes "the k-th most popular Rock track" O(1).

    A genre's taste communities each order its tracks by an affine permutation (factor, offset) of
    the genre ranks of its initial tracks; ranks of later tracks map to themselves. So a community's
    favourites are scattered over the genre's popularity, and stay put as the catalogue grows.
    """

    def __init__(
        self, initial_tracks: int, rng: random.Random, community_rng: random.Random
    ) -> None:
        period_share = CATALOGUE_PERIOD / sum(GENRE_WEIGHTS.values())
        self.layout = [
            g
            for g, weight in enumerate(GENRE_WEIGHTS.values())
            for _ in range(round(weight * period_share))
        ]
        rng.shuffle(self.layout)
        self.slots = [
            [s for s, g in enumerate(self.layout) if g == genre] for genre in range(len(GENRES))
        ]
        self.initial = initial_tracks
        self.factor = rng.randrange(1, initial_tracks + 1)
        while gcd(self.factor, initial_tracks) != 1:
            self.factor += 1
        self.offset = rng.randrange(initial_tracks)
        self.inverse = pow(self.factor, -1, initial_tracks)
        self.initial_in_genre = [self.genre_size(g, initial_tracks) for g in range(len(GENRES))]
        # communities[genre][c] = (factor, offset, inverse factor) modulo initial_in_genre[genre]
        self.communities: list[list[tuple[int, int, int]]] = []
        self.community_sizes: list[list[float]] = []  # cumulative, community c ~ 1 / (c + 1)
        for count in self.initial_in_genre:
            modulus = max(count, 1)
            permutations = []
            for _ in range(community_rng.randint(*COMMUNITIES_PER_GENRE)):
                factor = community_rng.randrange(modulus)
                while gcd(factor, modulus) != 1:  # stops at modulus - 1 at the latest
                    factor += 1
                offset = community_rng.randrange(modulus)
                permutations.append((factor, offset, pow(factor, -1, modulus)))
            self.communities.append(permutations)
            self.community_sizes.append(
                list(accumulate(1 / (c + 1) for c in range(len(permutations))))
            )

    def index_at(self, position: int) -> int:
        if position >= self.initial:
            return position
        return (position * self.factor + self.offset) % self.initial

    def position_of(self, index: int) -> int:
        if index >= self.initial:
            return index
        return (index - self.offset) * self.inverse % self.initial

    def genre_at(self, position: int) -> int:
        return self.layout[position % CATALOGUE_PERIOD]

    def genre_size(self, genre: int, available: int) -> int:
        """How many of the first `available` positions belong to `genre`."""
        slots = self.slots[genre]
        cycles, rest = divmod(available, CATALOGUE_PERIOD)
        return cycles * len(slots) + bisect_left(slots, rest)

    def position_in_genre(self, genre: int, rank: int) -> int:
        slots = self.slots[genre]
        cycle, slot = divmod(rank, len(slots))
        return cycle * CATALOGUE_PERIOD + slots[slot]

    def rank_in_genre(self, position: int) -> int:
        slots = self.slots[self.genre_at(position)]
        cycle, rest = divmod(position, CATALOGUE_PERIOD)
        return cycle * len(slots) + bisect_left(slots, rest)

    def community_rank(self, genre: int, community: int, rank: int) -> int:
        """Where the track of popularity `rank` in `genre` stands in the community's own order."""
        count = self.initial_in_genre[genre]
        if rank >= count:
            return rank
        _, offset, inverse = self.communities[genre][community]
        return (rank - offset) * inverse % count


class World:
    """The fake service's data set on any simulated day, derived on demand from (seed, sizes, day).

    `day` is the day served when a method's `day` argument is omitted; the dev API server serves it.
    """

    def __init__(
        self, seed: int = 42, users: int = 1000, tracks: int = 1000, listens: int = 20, day: int = 0
    ) -> None:
        if users < 0 or tracks < 1 or listens < 1:
            raise ValueError("need users >= 0, tracks >= 1 and listens >= 1")
        self.seed, self.users, self.tracks, self.listens = seed, users, tracks, listens
        self.day = day
        self._user_growth = _Growth(users, SIGNUP_RATE, seed, _Stream.USER_GROWTH)
        self._track_growth = _Growth(tracks, NEW_TRACK_RATE, seed, _Stream.TRACK_GROWTH)
        id_rng = _rng(seed, _Stream.IDS, 0)
        self._user_ids = _IdSpace(self._user_growth.created(MAX_DAY), id_rng)
        self._track_ids = _IdSpace(self._track_growth.created(MAX_DAY), id_rng)
        self._deletions = _Deletions(id_rng)
        self._catalogue = _Catalogue(
            tracks, _rng(seed, _Stream.LAYOUT, 0), _rng(seed, _Stream.COMMUNITIES, 0)
        )
        self._live_before_cohort = lru_cache(maxsize=8)(self._count_live_before_cohort)
        self._spans = lru_cache(maxsize=MAX_DAY + 1)(self._count_spans)
        self._builders: dict[Endpoint, Callable[[int, int], Record]] = {
            "users": self._user,
            "tracks": self._track,
            "listen_history": self._listen_history,
        }

    @property
    def day(self) -> int:
        return self._day

    @day.setter
    def day(self, day: int) -> None:
        self._day = self._check_day(day)

    # --- the API's view -------------------------------------------------------------------------

    def total(self, endpoint: Endpoint, day: int | None = None) -> int:
        """Number of records the endpoint serves on `day`."""
        day = self._resolve_day(day)
        if endpoint == "tracks":
            return self._track_growth.created(day)
        return self._live_before_cohort(day)[-1]

    def page(
        self, endpoint: Endpoint, page: int, size: int, day: int | None = None
    ) -> list[Record]:
        """Records of a 1-based page, in the service's stable order; past the end it is empty."""
        if page < 1 or size < 1:
            raise ValueError("page and size must be >= 1")
        day = self._resolve_day(day)
        indexes = self._indexes(endpoint, day, offset=(page - 1) * size)
        build = self._builders[endpoint]
        return [build(index, day) for index in islice(indexes, size)]

    def records(self, endpoint: Endpoint, day: int | None = None) -> Iterator[Record]:
        """Every record the endpoint serves on `day`, in order."""
        day = self._resolve_day(day)
        build = self._builders[endpoint]
        return (build(index, day) for index in self._indexes(endpoint, day, offset=0))

    # --- expectations for tests (computed by scanning: fine for test-sized worlds) --------------

    def keys(self, endpoint: Endpoint, day: int | None = None) -> list[int]:
        """Key values (id, or user_id for listen_history) served on `day`, in order."""
        return [record[KEY_FIELD[endpoint]] for record in self.records(endpoint, day)]

    def changed_keys(self, endpoint: Endpoint, day: int) -> set[int]:
        """Keys of the records that are new on `day` or differ from the day before."""
        key = KEY_FIELD[endpoint]
        before = {record[key]: record for record in self.records(endpoint, day - 1)}
        return {
            record[key]
            for record in self.records(endpoint, day)
            if before.get(record[key]) != record
        }

    def deleted_user_ids(self, from_day: int, to_day: int) -> set[int]:
        """Ids of users served on `from_day` that are gone by `to_day`."""
        return set(self.keys("users", from_day)) - set(self.keys("users", to_day))

    def new_listen_count(self, day: int) -> int:
        """How many track ids were appended to listen histories on `day` (all, for new users)."""
        before = {
            record["user_id"]: len(record["items"])
            for record in self.records("listen_history", day - 1)
        }
        return sum(
            len(record["items"]) - before.get(record["user_id"], 0)
            for record in self.records("listen_history", day)
        )

    # --- ground truth, for evaluation only -------------------------------------------------------

    def listen_probabilities(self, user_id: int, day: int | None = None) -> dict[int, float]:
        """For evaluation only: the true distribution of the user's next listen, by track id.

        The mixture _draw_listens samples from, over the tracks existing on `day`: Zipf over the
        user's community order (COMMUNITY_SHARE), Zipf over the favourite genre's popularity
        (GENRE_SHARE), Zipf over all tracks' popularity (the rest; all of it if the genre is empty).
        """
        day = self._resolve_day(day)
        index = self._user_ids.index_of(user_id)
        if index >= self._user_growth.created(day) or not self._is_live(index, day):
            raise KeyError(f"user {user_id} is not live on day {day}")
        genre, community = self._taste(index)
        available, all_span, genre_spans = self._spans(day)
        in_genre, genre_span, own_span = genre_spans[genre]
        all_share = 1.0 - FAVOURITE_SHARE if in_genre else 1.0
        catalogue = self._catalogue
        probabilities = {}
        for position in range(available):
            probability = all_share * _zipf_probability(position, all_span)
            if in_genre and catalogue.genre_at(position) == genre:
                rank = catalogue.rank_in_genre(position)
                own_rank = catalogue.community_rank(genre, community, rank)
                probability += GENRE_SHARE * _zipf_probability(rank, genre_span)
                probability += COMMUNITY_SHARE * _zipf_probability(
                    own_rank, own_span, COMMUNITY_ZIPF_EXPONENT
                )
            probabilities[self._track_ids.id_of(catalogue.index_at(position))] = probability
        return probabilities

    def taste_of(self, user_id: int) -> tuple[str, int]:
        """For evaluation only: the user's favourite genre and hidden taste community in it.

        Communities are numbered from 0, the largest. Users of the same taste share their
        listen_probabilities on any day. The taste never changes; the id is not checked.
        """
        genre, community = self._taste(self._user_ids.index_of(user_id))
        return GENRES[genre], community

    # --- internals -------------------------------------------------------------------------------

    @staticmethod
    def _check_day(day: int) -> int:
        if not 0 <= day <= MAX_DAY:
            raise ValueError(f"day must be within 0..{MAX_DAY}, got {day}")
        return day

    def _resolve_day(self, day: int | None) -> int:
        return self._day if day is None else self._check_day(day)

    def _indexes(self, endpoint: Endpoint, day: int, offset: int) -> Iterator[int]:
        if endpoint == "tracks":
            return iter(range(offset, self._track_growth.created(day)))
        return self._live_users(day, offset)

    def _is_live(self, index: int, day: int) -> bool:
        cohort = self._user_growth.cohort_of(index)
        return self._deletions.key(index) >= self._deletions.threshold(cohort, day)

    def _count_live_before_cohort(self, day: int) -> list[int]:
        """counts[c] = live users on `day` among cohorts before c; counts[-1] is the total."""
        starts, counts = self._user_growth.starts, [0]
        for cohort in range(day + 1):
            threshold = self._deletions.threshold(cohort, day)
            counts.append(
                counts[-1]
                + self._deletions.live_between(starts[cohort], starts[cohort + 1], threshold)
            )
        return counts

    def _live_users(self, day: int, offset: int) -> Iterator[int]:
        """Indexes of users live on `day`, from the `offset`-th one on."""
        counts = self._live_before_cohort(day)
        if offset >= counts[-1]:
            return
        starts, deletions = self._user_growth.starts, self._deletions
        cohort = bisect_right(counts, offset) - 1
        end = starts[cohort + 1]
        threshold = deletions.threshold(cohort, day)
        index = deletions.nth_live(starts[cohort], end, threshold, offset - counts[cohort])
        created = self._user_growth.created(day)
        while index < created:
            while index >= end:
                cohort += 1
                end = starts[cohort + 1]
                threshold = deletions.threshold(cohort, day)
            if deletions.key(index) >= threshold:
                yield index
            index += 1

    def _taste(self, user_index: int) -> tuple[int, int]:
        """The user's favourite genre (index in GENRES) and community in it: their listening."""
        hashed = _hash(self.seed, _Stream.TASTE, user_index)
        genre = GENRES.index(_weighted(hashed / 2**64, _GENRE_CHOICES))  # from the high bits
        sizes = self._catalogue.community_sizes[genre]
        return genre, bisect_right(sizes, (hashed & 0xFFFFFFFF) / 2**32 * sizes[-1])

    def _count_spans(self, day: int) -> tuple[int, float, list[tuple[int, float, float]]]:
        """Tracks existing on `day`, their Zipf span, and by genre: tracks, genre and community
        Zipf spans."""
        available = self._track_growth.created(day)
        genre_sizes = [self._catalogue.genre_size(g, available) for g in range(len(GENRES))]
        return (
            available,
            _zipf_span(available),
            [(n, _zipf_span(n), _zipf_span(n, COMMUNITY_ZIPF_EXPONENT)) for n in genre_sizes],
        )

    def _user(self, index: int, day: int) -> Record:
        cohort = self._user_growth.cohort_of(index)
        rng = _rng(self.seed, _Stream.USER, index)
        created = _created_at(rng, cohort)  # first draw: _listen_history replays it
        updated = _first_updated_at(rng, created, cohort)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        gender = _weighted(rng.random(), _GENDER_CHOICES)
        email = _email(rng, first, last)
        edits = _rng(self.seed, _Stream.USER_EDITS, index)
        edit_day = cohort + _gap(edits, _LOG_STAY_EDIT)
        while edit_day <= day:
            updated = _event_time(edits, edit_day, updated)
            change = edits.random()  # 30% new last name and email, 50% new email, 20% new gender
            if change < 0.3:
                last = edits.choice(LAST_NAMES)
            if change < 0.8:
                email = _email(edits, first, last)
            else:
                gender = _weighted(edits.random(), _GENDER_CHOICES)
            edit_day += _gap(edits, _LOG_STAY_EDIT)
        return {
            "id": self._user_ids.id_of(index),
            "first_name": first,
            "last_name": last,
            "email": email,
            "gender": gender,
            "favorite_genres": GENRES[self._taste(index)[0]],
            "created_at": _iso(created),
            "updated_at": _iso(updated),
        }

    def _track(self, index: int, day: int) -> Record:
        """A track never changes once created: `day` is unused, kept for a uniform signature."""
        cohort = self._track_growth.cohort_of(index)
        rng = _rng(self.seed, _Stream.TRACK, index)
        created = _created_at(rng, cohort)
        updated = _first_updated_at(rng, created, cohort)
        genre = GENRES[self._catalogue.genre_at(self._catalogue.position_of(index))]
        label = rng.random()
        if label < TWO_GENRE_SHARE:
            genres = f"{genre}, {rng.choice([other for other in GENRES if other != genre])}"
        elif label < TWO_GENRE_SHARE + FREE_WORD_GENRE_SHARE:
            genres = rng.choice(FREE_GENRE_WORDS)
        else:
            genres = genre
        length = rng.random()
        if length < 0.92:
            seconds = int(rng.triangular(120, 360, 200))
        elif length < 0.97:
            seconds = rng.randrange(360, 900)
        else:
            seconds = rng.randrange(30, 120)
        return {
            "id": self._track_ids.id_of(index),
            "name": rng.choice(WORDS),
            "artist": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            "songwriters": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
            "duration": f"{seconds // 60:02d}:{seconds % 60:02d}",
            "genres": genres,
            "album": rng.choice(WORDS),
            "created_at": _iso(created),
            "updated_at": _iso(updated),
        }

    def _listen_history(self, index: int, day: int) -> Record:
        """A user's listens so far, drawn day by day from one stream, so only ever appended."""
        cohort = self._user_growth.cohort_of(index)
        signed_up = _created_at(_rng(self.seed, _Stream.USER, index), cohort)
        rng = _rng(self.seed, _Stream.LISTENS, index)
        cohort_end = cohort * DAY
        first_listen = signed_up + rng.randrange(min(7 * DAY, cohort_end - signed_up))
        last_listen = rng.randrange(first_listen, cohort_end)
        taste = self._taste(index)
        first_count = self.listens if cohort == 0 else rng.randint(1, MAX_LISTENS_PER_DAY)
        items = self._draw_listens(rng, taste, first_count, cohort)
        listen_day = cohort + _gap(rng, _LOG_STAY_LISTEN)
        while listen_day <= day:
            last_listen = _event_time(rng, listen_day, last_listen)
            items += self._draw_listens(rng, taste, rng.randint(1, MAX_LISTENS_PER_DAY), listen_day)
            listen_day += _gap(rng, _LOG_STAY_LISTEN)
        return {
            "user_id": self._user_ids.id_of(index),
            "items": items,
            "created_at": _iso(first_listen),
            "updated_at": _iso(last_listen),
        }

    def _draw_listens(
        self, rng: random.Random, taste: tuple[int, int], count: int, day: int
    ) -> list[int]:
        """Track ids of `count` listens on `day`, sampled from the mixture of listen_probabilities.

        One uniform draw per listen picks the mixture component and, rescaled, the Zipf rank. This
        is the hot loop of listen_history pages, so the Zipf inverse CDF (see _zipf_probability),
        _Catalogue.position_in_genre / index_at and _IdSpace.id_of are inlined.
        """
        genre, community = taste
        available, all_span, genre_spans = self._spans(day)
        in_genre, genre_span, own_span = genre_spans[genre]
        catalogue, ids = self._catalogue, self._track_ids
        slots = catalogue.slots[genre]
        per_period = len(slots)
        initial, factor, offset = catalogue.initial, catalogue.factor, catalogue.offset
        own_count = catalogue.initial_in_genre[genre]
        own_factor, own_offset, _ = catalogue.communities[genre][community]
        id_factor, id_offset, id_modulus = ids.factor, ids.offset, ids.modulus
        community_cut = COMMUNITY_SHARE if in_genre else 0.0
        genre_cut = FAVOURITE_SHARE if in_genre else 0.0
        inverse, own_inverse = 1.0 / (1.0 - ZIPF_EXPONENT), 1.0 / (1.0 - COMMUNITY_ZIPF_EXPONENT)
        random_unit = rng.random
        listens = []
        for _ in range(count):
            unit = random_unit()
            if unit < genre_cut:
                if unit < community_cut:
                    rank = int((1.0 + unit / COMMUNITY_SHARE * own_span) ** own_inverse) - 1
                    if rank >= in_genre:
                        rank = in_genre - 1
                    if rank < own_count:  # from the community's order to the genre's popularity
                        rank = (rank * own_factor + own_offset) % own_count
                else:
                    unit = (unit - COMMUNITY_SHARE) / GENRE_SHARE
                    rank = int((1.0 + unit * genre_span) ** inverse) - 1
                    if rank >= in_genre:
                        rank = in_genre - 1
                cycle, slot = divmod(rank, per_period)
                position = cycle * CATALOGUE_PERIOD + slots[slot]
            else:
                unit = (unit - genre_cut) / (1.0 - genre_cut)
                position = int((1.0 + unit * all_span) ** inverse) - 1
                if position >= available:
                    position = available - 1
            if position < initial:
                position = (position * factor + offset) % initial  # now the track's index
            listens.append((position * id_factor + id_offset) % id_modulus + 1)
        return listens
