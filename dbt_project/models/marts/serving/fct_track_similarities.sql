{#
    "More like this": for each track, the 20 tracks the most current users have also played.
    Computed once a night here because at query time it reads every listener's tracks (about
    30 ms a track at 100,000 users); the serving API (serve/) reads this table by track_id, and
    the rows are written in track_id order so that such a read touches one row group.
#}

with

fct_user_tracks as (
    select * from {{ ref('fct_user_tracks') }}
),

pairs as (
    select
        played.track_id,
        also_played.track_id as similar_track_id,
        count(*) as co_listeners
    from fct_user_tracks as played
    inner join fct_user_tracks as also_played
        on
            played.user_id = also_played.user_id
            and played.track_id != also_played.track_id
    group by
        played.track_id,
        also_played.track_id
),

ranked as (
    select
        track_id,
        similar_track_id,
        co_listeners,
        row_number() over (
            partition by track_id order by co_listeners desc, similar_track_id asc
        ) as similarity_rank
    from pairs
),

top_ranked as (
    select *
    from ranked
    where similarity_rank <= 20
),

final as (
    select
        track_id,
        similarity_rank,
        similar_track_id,
        co_listeners
    from top_ranked
    order by
        track_id,
        similarity_rank
)

select * from final
