with

dim_tracks as (
    select * from {{ ref('dim_tracks') }}
),

fct_listens as (
    select * from {{ ref('fct_listens') }}
),

stg_moovitamix__loads as (
    select * from {{ ref('stg_moovitamix__loads') }}
),

as_of as (
    {#- "days since" counts to the latest successful load, not to the clock: reproducible -#}
    select max(loaded_at) as as_of_at
    from stg_moovitamix__loads
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
        {{ whole_days_between('dim_tracks.released_at', 'as_of.as_of_at') }} as days_since_release,
        as_of.as_of_at
    from dim_tracks
    cross join as_of
    left join listen_stats
        on dim_tracks.track_id = listen_stats.track_id
)

select * from final
