{#
    A view: the listening aggregates of int_user_features (a table) with the "days since"
    columns counted to the latest successful load, so they are current after every load, the
    nights that rebuild nothing included. Published as a table like every analyst relation.
#}

{{ config(materialized='view') }}

with

int_user_features as (
    select * from {{ ref('int_user_features') }}
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
        int_user_features.user_id,
        int_user_features.favorite_genre,
        int_user_features.total_listens,
        int_user_features.distinct_tracks,
        int_user_features.distinct_artists,
        int_user_features.favorite_genre_listen_share,
        int_user_features.top_genre,
        int_user_features.genre_entropy_bits,
        {{ whole_days_between('int_user_features.signed_up_at', 'as_of.as_of_at') }}
            as days_since_signup,
        {{ whole_days_between('int_user_features.last_new_listen_at', 'as_of.as_of_at') }}
            as days_since_last_new_listen,
        as_of.as_of_at
    from int_user_features
    cross join as_of
)

select * from final
