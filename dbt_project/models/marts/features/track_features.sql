{#
    A view: the listening aggregates of int_track_features (a table) with "days since release"
    counted to the latest successful load, so it is current after every load, the nights that
    rebuild nothing included. Published as a table like every analyst relation.
#}

{{ config(materialized='view') }}

with

int_track_features as (
    select * from {{ ref('int_track_features') }}
),

stg_moovitamix__loads as (
    select * from {{ ref('stg_moovitamix__loads') }}
),

as_of as (
    {#- "days since" counts to the latest successful load, not to the clock: reproducible -#}
    select max(loaded_at) as as_of_at
    from stg_moovitamix__loads
),

final as (
    select
        int_track_features.track_id,
        int_track_features.listen_count,
        int_track_features.distinct_listeners,
        int_track_features.popularity_rank,
        int_track_features.duration_seconds,
        int_track_features.genres,
        {{ whole_days_between('int_track_features.released_at', 'as_of.as_of_at') }}
            as days_since_release,
        as_of.as_of_at
    from int_track_features
    cross join as_of
)

select * from final
