{#
    Every track id ever loaded, with the latest time its catalogue record changed: first loaded,
    replaced by a new version, or retired. The per-user incremental models rebuild the users
    who play a track changed since their last build (macro users_changed_since); dim_tracks
    alone cannot tell a retired track.
#}

with

source as (
    select * from {{ source('moovitamix', 'tracks') }}
),

versions as (
    select
        id as track_id,
        {{ to_utc_timestamp('_dlt_valid_from') }} as loaded_at,
        {{ to_utc_timestamp('_dlt_valid_to') }} as retired_at
    from source
),

final as (
    select
        track_id,
        max(coalesce(retired_at, loaded_at)) as changed_at
    from versions
    group by track_id
)

select * from final
