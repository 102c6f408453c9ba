"""The dev API's hidden taste communities: a listening signal that only co-listening reveals.

Users have a favourite genre (in /users) and, hidden from every API field, a taste community in
that genre. World.taste_of and World.listen_probabilities expose the truth for evaluation only.
"""

import random
from collections import Counter, defaultdict
from itertools import combinations

import orjson

from dev_api import World


def histories(world: World, day: int = 0) -> dict[int, list[int]]:
    return {
        history["user_id"]: history["items"] for history in world.records("listen_history", day)
    }


def total_variation(listens: list[int], probabilities: dict[int, float]) -> float:
    plays = Counter(listens)
    assert plays.keys() <= probabilities.keys()
    return 0.5 * sum(abs(plays[track] / len(listens) - p) for track, p in probabilities.items())


def top(probabilities: dict[int, float], count: int = 10) -> set[int]:
    return set(sorted(probabilities, key=lambda track: -probabilities[track])[:count])


def test_a_genres_fans_split_into_8_to_20_communities_of_unequal_size() -> None:
    world = World(users=4000, tracks=300)
    users = list(world.records("users"))
    tastes = {user["id"]: world.taste_of(user["id"]) for user in users}
    assert all(tastes[user["id"]][0] == user["favorite_genres"] for user in users)
    pop = Counter(community for genre, community in tastes.values() if genre == "Pop")
    assert 8 <= len(pop) <= 20 and pop.most_common(1)[0][0] == 0
    assert pop[0] > 3 * min(pop.values())


def test_users_of_one_community_share_far_more_tracks_than_other_fans_of_their_genre() -> None:
    world = World(users=2000, listens=20)
    listened = {user_id: set(items) for user_id, items in histories(world).items()}
    tastes = {user_id: world.taste_of(user_id) for user_id in listened}
    fans: dict[str, list[int]] = defaultdict(list)
    for user_id, (genre, _) in tastes.items():
        fans[genre].append(user_id)
    shared: dict[bool, list[int]] = {True: [], False: []}
    for members in fans.values():
        for a, b in combinations(members, 2):
            shared[tastes[a] == tastes[b]].append(len(listened[a] & listened[b]))
    same, other = (sum(counts) / len(counts) for counts in (shared[True], shared[False]))
    assert len(shared[True]) > 1000 and same > 1.5 * other


def test_community_popularity_beats_genre_popularity_which_beats_global_popularity() -> None:
    """recall@10 on held-out users: what a learned model can find beyond the profile."""
    world = World(users=3000, listens=20)
    genres = {user["id"]: user["favorite_genres"] for user in world.records("users")}
    listens = histories(world)
    tastes = {user_id: world.taste_of(user_id) for user_id in listens}
    learn, held_out = list(listens)[::2], list(listens)[1::2]
    everyone: Counter[int] = Counter()
    by_genre: dict[str, Counter[int]] = defaultdict(Counter)
    by_community: dict[tuple[str, int], Counter[int]] = defaultdict(Counter)
    for user_id in learn:
        everyone.update(listens[user_id])
        by_genre[genres[user_id]].update(listens[user_id])
        by_community[tastes[user_id]].update(listens[user_id])
    best: dict[tuple[str, int], set[int]] = {}
    recall: Counter[str] = Counter()
    for user_id in held_out:
        taste, items = tastes[user_id], listens[user_id]
        if taste not in best:
            best[taste] = top(world.listen_probabilities(user_id))
        recommended = {
            "global": {track for track, _ in everyone.most_common(10)},
            "genre": {track for track, _ in by_genre[genres[user_id]].most_common(10)},
            "community": {track for track, _ in by_community[taste].most_common(10)},
            "ceiling": best[taste],
        }
        for name, tracks in recommended.items():
            recall[name] += sum(item in tracks for item in items) / len(items) / len(held_out)
    assert recall["genre"] > 2 * recall["global"]  # about 0.33 against 0.12
    assert recall["community"] > 1.25 * recall["genre"]  # about 0.46 against 0.33
    assert recall["ceiling"] > recall["community"] - 0.01


def test_listen_probabilities_are_the_distribution_a_users_listens_are_drawn_from() -> None:
    world = World(users=10, tracks=200, listens=50_000)
    listens = histories(world)
    for user_id, items in listens.items():
        probabilities = world.listen_probabilities(user_id)
        assert probabilities.keys() == set(world.keys("tracks"))
        assert abs(sum(probabilities.values()) - 1.0) < 1e-9
        assert total_variation(items, probabilities) < 0.03  # sampling noise is about 0.012
    # Two communities of one genre are clearly different distributions.
    reference = World(users=500, tracks=1000)
    by_taste = {reference.taste_of(user_id): user_id for user_id in reference.keys("users")}
    first, second = (reference.listen_probabilities(by_taste["Pop", c]) for c in (0, 1))
    assert 0.5 * sum(abs(first[track] - second[track]) for track in first) > 0.3
    assert len(top(first) & top(second)) <= 5


def test_sampling_matches_listen_probabilities_once_new_tracks_exist() -> None:
    """White-box: draw many listens on a late day, when the community order covers new tracks."""
    world = World(users=50, tracks=60)
    day = 400
    assert world.total("tracks", day) > 100
    for user_id in world.keys("users", day)[:5]:
        taste = world._taste(world._user_ids.index_of(user_id))
        listens = world._draw_listens(random.Random(user_id), taste, 100_000, day)
        assert total_variation(listens, world.listen_probabilities(user_id, day)) < 0.02


def test_taste_is_stable_as_the_catalogue_grows() -> None:
    world = World(users=100, tracks=1000)
    for user_id in world.keys("users", 200)[:20]:
        day0, day200 = (world.listen_probabilities(user_id, day) for day in (0, 200))
        assert len(top(day0) & top(day200)) >= 8


def test_listen_histories_are_deterministic_appends() -> None:
    world = World(users=200, tracks=100, listens=8)
    previous = histories(world, 0)
    for day in range(1, 31):
        current = histories(world, day)
        for user_id, items in current.items():
            assert items[: len(previous.get(user_id, []))] == previous.get(user_id, [])
        previous = current
    big, again = World(users=100_000, listens=20), World(users=100_000, listens=20)
    # (a page's speed is measured by `make bench`, beside the fetch floor, not asserted here)
    for day in (0, 30):
        page = big.page("listen_history", 321, 100, day)
        assert len(page) == 100
        assert orjson.dumps(page) == orjson.dumps(again.page("listen_history", 321, 100, day))
