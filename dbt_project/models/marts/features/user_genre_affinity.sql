{#
    A listen of a track with n genres counts 1/n towards each of them, so a user's shares sum
    to 1 over the genres of the tracks they played (listens of tracks with no genre, or missing
    from /tracks, carry no genre and are left out).

    Incremental by user (delete+insert on user_id), as fct_listens: a run computes again only
    the users whose listens, user record or played tracks changed since the newest
    `last_seen_at` held (macro users_changed_since). Such a user left with no genre gets one row
    without a genre, so that delete+insert removes their old rows; the post-hook deletes it,
    and the users who left. On Spark a table, rebuilt whole each night (fct_listens).
#}

{{
    config(
        materialized='incremental' if target.type == 'duckdb' else 'table',
        incremental_strategy='delete+insert',
        unique_key='user_id',
        on_schema_change='sync_all_columns',
        post_hook="
            delete from {{ this }}
            where genre is null
                or user_id not in (select user_id from {{ ref('dim_users') }})
        " if target.type == 'duckdb' else [],
    )
}}

-- depends_on: {{ ref('stg_moovitamix__listen_history') }}
-- depends_on: {{ ref('stg_moovitamix__track_changes') }}

with

dim_users as (
    select * from {{ ref('dim_users') }}
),

dim_tracks as (
    select * from {{ ref('dim_tracks') }}
),

fct_listens as (
    select * from {{ ref('fct_listens') }}
),

{% if is_incremental() %}
changed_users as (
    {{ users_changed_since('last_seen_at', through_tracks=true) }}
),
{% endif %}

{#- the listens this run reads: the changed users', or everyone's -#}
listens as (
    select *
    from fct_listens
    {% if is_incremental() %}
    where user_id in (select user_id from changed_users)
    {% endif %}
),

track_genres as (
    select
        dim_tracks.track_id,
        unnested_elements.genre,
        cast(1 as double) / {{ list_length('dim_tracks.genres') }} as genre_weight
    from dim_tracks
    {{ cross_join_unnest('dim_tracks.genres', 'genre') }}
),

user_genre_listens as (
    select
        listens.user_id,
        track_genres.genre,
        sum(track_genres.genre_weight) as weighted_listens,
        max(listens.first_seen_at) as last_seen_at
    from listens
    inner join track_genres
        on listens.track_id = track_genres.track_id
    group by
        listens.user_id,
        track_genres.genre
),

user_genre_totals as (
    select
        user_id,
        sum(weighted_listens) as genre_attributed_listens
    from user_genre_listens
    group by user_id
),

final as (
    select
        user_genre_listens.user_id,
        user_genre_listens.genre,
        {#- rounded: float sums depend on the order the engine adds in; rebuilds must agree #}
        round(user_genre_listens.weighted_listens, 9) as weighted_listens,
        round(
            user_genre_listens.weighted_listens / user_genre_totals.genre_attributed_listens, 12
        ) as listen_share,
        user_genre_listens.genre = dim_users.favorite_genre as is_favorite_genre,
        user_genre_listens.last_seen_at
    from user_genre_listens
    inner join user_genre_totals
        on user_genre_listens.user_id = user_genre_totals.user_id
    inner join dim_users
        on user_genre_listens.user_id = dim_users.user_id
),

{% if is_incremental() %}
no_genre_left as (
    {#- a changed user with no genre now: one row without a genre (the post-hook deletes it) -#}
    select
        changed_users.user_id,
        cast(null as {{ dbt.type_string() }}) as genre,
        cast(null as double) as weighted_listens,
        cast(null as double) as listen_share,
        cast(null as boolean) as is_favorite_genre,
        cast(null as timestamp) as last_seen_at
    from changed_users
    where changed_users.user_id not in (select final.user_id from final)
),
{% endif %}

written as (
    select * from final
    {% if is_incremental() %}
    union all
    select * from no_genre_left
    {% endif %}
)

select * from written
