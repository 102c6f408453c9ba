"""The serving API over a real published night, under a real uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import Nights
from tests.serve.support import assert_error, get, served
from tests.support import query


@pytest.fixture(scope="module")
def api(nights: Nights) -> Iterator[str]:
    with served(nights.night1 / "analytics.duckdb") as url:
        yield url


def night_of(path: Path) -> str:
    [(run_id,)] = query(
        path,
        "select run_id from ops.pipeline_runs where published_at is not null "
        "order by published_at desc limit 1",
    )
    return run_id


def test_recommendations_carry_every_field_of_the_published_night(
    api: str, published: Path
) -> None:
    [(user_id,)] = query(
        published,
        "select min(user_id) from marts.fct_recommendations where not is_cold_start",
    )
    rows = query(
        published,
        """
        select recommendations.rank, recommendations.track_id, recommendations.track_name,
               recommendations.artist_name, recommendations.score, recommendations.is_cold_start,
               recommendations.model_version, model_versions.model_kind,
               recommendations.generated_at
        from marts.fct_recommendations as recommendations
        left join ml.model_versions using (model_version)
        where user_id = ? order by rank limit 7
        """,
        user_id,
    )
    response = get(f"{api}/users/{user_id}/recommendations", params={"limit": 7})
    assert response.status_code == 200, response.text
    body = response.json()
    night = night_of(published)
    assert body == {
        "night": night,
        "user_id": user_id,
        "model_version": rows[0][6],
        "model_kind": rows[0][7],
        "generated_at": rows[0][8].isoformat(),
        "is_cold_start": False,
        "items": [
            {
                "rank": rank,
                "track_id": track_id,
                "track_name": name,
                "artist_name": artist,
                "score": score,
            }
            for rank, track_id, name, artist, score, *_ in rows
        ],
    }
    assert [item["rank"] for item in body["items"]] == list(range(1, 8))
    assert all(item["track_name"] and item["artist_name"] for item in body["items"])
    assert body["model_kind"] in {"als", "popularity", "co_listen"}
    assert response.headers["x-moovitamix-night"] == night
    assert night in response.headers["etag"]
    # the default limit is 10, in rank order, scores never rising
    default = get(f"{api}/users/{user_id}/recommendations").json()["items"]
    assert [item["rank"] for item in default] == list(range(1, 11))
    scores = [item["score"] for item in default]
    assert scores == sorted(scores, reverse=True)


def test_no_recommended_track_was_played_by_the_user(api: str, published: Path) -> None:
    users = [u for (u,) in query(published, "select user_id from marts.dim_users order by 1")]
    played = set(query(published, "select user_id, track_id from marts.fct_user_tracks"))
    served_items = 0
    for user_id in users[::5]:
        response = get(f"{api}/users/{user_id}/recommendations", params={"limit": 20})
        assert response.status_code == 200, response.text
        for item in response.json()["items"]:
            assert (user_id, item["track_id"]) not in played
            served_items += 1
    assert served_items >= 20 * len(users[::5]) * 0.9


def test_a_cold_start_user_gets_genre_favourites(api: str, published: Path) -> None:
    cold = query(
        published,
        "select distinct user_id from marts.fct_recommendations where is_cold_start",
    )
    assert len(cold) >= 1, "the null_items fault should leave a user without listens"
    user_id = cold[0][0]
    assert query(published, "from marts.fct_user_tracks where user_id = ?", user_id) == []
    body = get(f"{api}/users/{user_id}/recommendations").json()
    assert body["is_cold_start"] is True
    assert len(body["items"]) == 10


def test_a_user_deleted_upstream_gets_404(api: str, nights: Nights) -> None:
    night0_file = nights.night0 / "analytics.duckdb"
    night0_users = {u for (u,) in query(night0_file, "select user_id from marts.dim_users")}
    deleted = sorted(nights.deleted_on_day1 & night0_users)
    assert deleted, "the world deletes users on day 1"
    with served(nights.night0 / "analytics.duckdb") as night0_api:
        assert get(f"{night0_api}/users/{deleted[0]}/recommendations").status_code == 200
    error = assert_error(get(f"{api}/users/{deleted[0]}/recommendations"), 404, "user_not_found")
    assert str(deleted[0]) in error["message"]
    assert error["night"] == night_of(nights.night1 / "analytics.duckdb")


def test_unknown_user_and_track_get_404(api: str) -> None:
    assert_error(get(f"{api}/users/987654321/recommendations"), 404, "user_not_found")
    assert_error(get(f"{api}/tracks/987654321/similar"), 404, "track_not_found")
    assert_error(get(f"{api}/no/such/path"), 404, "not_found")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/users/abc/recommendations", "user_id"),
        ("/users/0/recommendations", "user_id"),
        ("/users/-5/recommendations", "user_id"),
        ("/users/1/recommendations?limit=0", "limit"),
        ("/users/1/recommendations?limit=21", "limit"),
        ("/users/1/recommendations?limit=ten", "limit"),
        ("/tracks/1.5/similar", "track_id"),
        ("/tracks/99999999999999999999/similar", "track_id"),
        ("/tracks/1/similar?limit=100", "limit"),
    ],
)
def test_malformed_ids_and_limits_get_422_naming_the_field(api: str, path: str, field: str) -> None:
    error = assert_error(get(f"{api}{path}"), 422, "invalid_request")
    assert field in error["message"]


def test_similar_tracks_are_the_most_co_listened(api: str, published: Path) -> None:
    [(track_id,)] = query(
        published,
        "select track_id from features.track_features order by popularity_rank, track_id limit 1",
    )
    body = get(f"{api}/tracks/{track_id}/similar", params={"limit": 5}).json()
    [(name, artist)] = query(
        published,
        "select track_name, artist_name from marts.dim_tracks where track_id = ?",
        track_id,
    )
    assert (body["track_id"], body["track_name"], body["artist_name"]) == (track_id, name, artist)
    # recomputed here from the users' tracks: who played both
    co_listens = dict(
        query(
            published,
            """
            select other.track_id, count(*) from marts.fct_user_tracks as played
            inner join marts.fct_user_tracks as other
                on other.user_id = played.user_id and other.track_id != played.track_id
            where played.track_id = ? group by other.track_id
            """,
            track_id,
        )
    )
    expected = sorted(co_listens.items(), key=lambda pair: (-pair[1], pair[0]))[:5]
    assert [(i["track_id"], i["co_listeners"]) for i in body["items"]] == expected
    assert [i["rank"] for i in body["items"]] == [1, 2, 3, 4, 5]
    names = dict(query(published, "select track_id, track_name from marts.dim_tracks"))
    assert [i["track_name"] for i in body["items"]] == [names[t] for t, _ in expected]


def test_a_matching_etag_gets_304_until_the_next_night(api: str, published: Path) -> None:
    [(user_id,)] = query(published, "select min(user_id) from marts.fct_recommendations")
    first = get(f"{api}/users/{user_id}/recommendations")
    etag = first.headers["etag"]
    again = get(f"{api}/users/{user_id}/recommendations", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    other_limit = get(
        f"{api}/users/{user_id}/recommendations?limit=3", headers={"If-None-Match": etag}
    )
    assert other_limit.status_code == 200
    assert other_limit.headers["etag"] != etag
    stale_tag = get(
        f"{api}/users/{user_id}/recommendations", headers={"If-None-Match": '"older-night"'}
    )
    assert stale_tag.status_code == 200 and stale_tag.json() == first.json()
    similar = get(f"{api}/tracks/{first.json()['items'][0]['track_id']}/similar")
    assert get(similar.url, headers={"If-None-Match": similar.headers["etag"]}).status_code == 304


def test_health_says_the_night_its_age_and_model(api: str, published: Path) -> None:
    body = get(f"{api}/health").json()
    [(model_version, model_kind)] = query(
        published,
        "select model_version, model_kind from ml.model_versions where model_version = "
        "(select max(model_version) from ml.recommendations)",
    )
    assert body["status"] == "ok"
    assert body["night"] == night_of(published)
    assert 0 <= body["age_hours"] < 1
    assert body["stale_after_hours"] == 26
    assert (body["model_version"], body["model_kind"]) == (model_version, model_kind)


def test_health_is_503_when_stale_or_nothing_is_published(published: Path, tmp_path: Path) -> None:
    with served(published, stale_after_hours=0.0001) as url:
        error = assert_error(get(f"{url}/health"), 503, "stale")
        assert "staleness window" in error["message"]
    with served(tmp_path / "analytics.duckdb") as url:
        assert_error(get(f"{url}/health"), 503, "not_published")
        assert_error(get(f"{url}/users/1/recommendations"), 503, "not_published")


def test_a_token_is_required_when_configured(published: Path) -> None:
    with served(published, token="s3cret-token") as url:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
            response = get(f"{url}/health", headers=headers)
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
            assert "s3cret" not in response.text
        assert_error(get(f"{url}/users/1/recommendations"), 401, "unauthorized")
        ok = get(f"{url}/health", headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200


def test_openapi_documents_the_routes_and_the_error_shape(api: str) -> None:
    document = get(f"{api}/openapi.json").json()
    assert set(document["paths"]) == {
        "/users/{user_id}/recommendations",
        "/tracks/{track_id}/similar",
        "/health",
    }
    route = document["paths"]["/users/{user_id}/recommendations"]["get"]
    assert route["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Recommendations"
    )
    for status in ("401", "404", "422", "503"):
        assert route["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith(
            "/ErrorBody"
        )
    assert "RecommendedTrack" in document["components"]["schemas"]
    assert get(f"{api}/docs").status_code == 200
