with

fct_listens as (
    select * from {{ ref('fct_listens') }}
),

user_tracks as (
    select
        user_id,
        track_id,
        count(*) as listen_count,
        min(first_seen_at) as first_seen_at,
        max(first_seen_at) as last_seen_at
    from fct_listens
    group by
        user_id,
        track_id
),

final as (
    select * from user_tracks
)

select * from final
