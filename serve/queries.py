"""What each endpoint reads from one night's published file."""

from __future__ import annotations

from serve.models import Recommendations, RecommendedTrack, SimilarTrack, SimilarTracks
from serve.nights import Night

# marts.fct_recommendations: the scoring's rows of current users, with track names
RECOMMENDATIONS = """
select rank, track_id, track_name, artist_name, score, is_cold_start, model_version, generated_at
from marts.fct_recommendations
where user_id = ? and rank <= ?
order by rank
"""

# dim_tracks is the catalogue today; fct_track_similarities the co-listens (dbt, nightly)
TRACK = "select track_name, artist_name from marts.dim_tracks where track_id = ?"
SIMILAR = """
select similarities.similarity_rank, similarities.similar_track_id, dim_tracks.track_name,
       dim_tracks.artist_name, similarities.co_listeners
from marts.fct_track_similarities as similarities
left join marts.dim_tracks on dim_tracks.track_id = similarities.similar_track_id
where similarities.track_id = ? and similarities.similarity_rank <= ?
order by similarities.similarity_rank
"""


def recommendations(night: Night, user_id: int, limit: int) -> Recommendations | None:
    rows = night.query(RECOMMENDATIONS, [user_id, limit])
    if not rows:
        return None
    _, _, _, _, _, is_cold_start, model_version, generated_at = rows[0]
    return Recommendations(
        night=night.run_id,
        user_id=user_id,
        model_version=model_version,
        model_kind=night.model_kinds.get(model_version),
        generated_at=generated_at,
        is_cold_start=is_cold_start,
        items=[
            RecommendedTrack(
                rank=rank, track_id=track_id, track_name=name, artist_name=artist, score=score
            )
            for rank, track_id, name, artist, score, *_ in rows
        ],
    )


def similar_tracks(night: Night, track_id: int, limit: int) -> SimilarTracks | None:
    track = night.query(TRACK, [track_id])
    if not track:
        return None
    rows = night.query(SIMILAR, [track_id, limit])
    return SimilarTracks(
        night=night.run_id,
        track_id=track_id,
        track_name=track[0][0],
        artist_name=track[0][1],
        items=[
            SimilarTrack(
                rank=rank, track_id=similar, track_name=name, artist_name=artist, co_listeners=co
            )
            for rank, similar, name, artist, co in rows
        ],
    )
