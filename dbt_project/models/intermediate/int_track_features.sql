{#
    track_features without its "days since" columns: every aggregate over the listens, in a table
    that changes only when tracks or listens do. track_features (a view) adds the days
    counted to the latest load, so a night that loads nothing new rebuilds nothing and the
    days still count to that night's load.
#}

with

dim_tracks as (
    select * from {{ ref('dim_tracks') }}
),

fct_listens as (
    select * from {{ ref('fct_listens') }}
),

listen_stats as (
    select
        track_id,
        count(*) as listen_count,
        count(distinct user_id) as distinct_listeners
    from fct_listens
    group by track_id
),

final as (
    select
        dim_tracks.track_id,
        coalesce(listen_stats.listen_count, 0) as listen_count,
        coalesce(listen_stats.distinct_listeners, 0) as distinct_listeners,
        rank() over (order by coalesce(listen_stats.listen_count, 0) desc) as popularity_rank,
        dim_tracks.duration_seconds,
        dim_tracks.genres,
        dim_tracks.released_at
    from dim_tracks
    left join listen_stats
        on dim_tracks.track_id = listen_stats.track_id
)

select * from final
