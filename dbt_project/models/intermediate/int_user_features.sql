{#
    user_features without its "days since" columns: every aggregate over the listens, in a table
    that changes only when users, tracks or listens do. user_features (a view) adds the days
    counted to the latest load, so a night that loads nothing new rebuilds nothing and the
    days still count to that night's load.

    Incremental by user (delete+insert on user_id), as fct_listens: a run computes again only
    the users whose listens, user record or played tracks changed since the newest
    `last_new_listen_at` held (macro users_changed_since; user_genre_affinity, which it reads,
    changes only for those), and the post-hook removes the users who left. On Spark a table,
    rebuilt whole each night (fct_listens).
#}

{{
    config(
        materialized='incremental' if target.type == 'duckdb' else 'table',
        incremental_strategy='delete+insert',
        unique_key='user_id',
        on_schema_change='sync_all_columns',
        post_hook="
            delete from {{ this }}
            where user_id not in (select user_id from {{ ref('dim_users') }})
        " if target.type == 'duckdb' else [],
    )
}}

-- depends_on: {{ ref('stg_moovitamix__listen_history') }}
-- depends_on: {{ ref('stg_moovitamix__track_changes') }}

with

all_users as (
    select * from {{ ref('dim_users') }}
),

dim_tracks as (
    select * from {{ ref('dim_tracks') }}
),

all_listens as (
    select * from {{ ref('fct_listens') }}
),

all_genre_affinities as (
    select * from {{ ref('user_genre_affinity') }}
),

{% if is_incremental() %}
changed_users as (
    {{ users_changed_since('last_new_listen_at', through_tracks=true) }}
),
{% endif %}

{#- the users this run computes: the changed ones, or everyone -#}
dim_users as (
    select *
    from all_users
    {% if is_incremental() %}
    where user_id in (select user_id from changed_users)
    {% endif %}
),

fct_listens as (
    select *
    from all_listens
    {% if is_incremental() %}
    where user_id in (select user_id from changed_users)
    {% endif %}
),

user_genre_affinity as (
    select *
    from all_genre_affinities
    {% if is_incremental() %}
    where user_id in (select user_id from changed_users)
    {% endif %}
),

listen_stats as (
    select
        user_id,
        count(*) as total_listens,
        count(distinct track_id) as distinct_tracks,
        max(first_seen_at) as last_new_listen_at
    from fct_listens
    group by user_id
),

artist_stats as (
    select
        fct_listens.user_id,
        count(distinct dim_tracks.artist_name) as distinct_artists
    from fct_listens
    inner join dim_tracks
        on fct_listens.track_id = dim_tracks.track_id
    group by fct_listens.user_id
),

ranked_genres as (
    select
        user_id,
        genre,
        row_number() over (
            partition by user_id
            order by weighted_listens desc, genre asc
        ) as genre_rank
    from user_genre_affinity
),

top_genres as (
    select
        user_id,
        genre as top_genre
    from ranked_genres
    where genre_rank = 1
),

genre_stats as (
    select
        user_id,
        sum(case when is_favorite_genre then listen_share else 0 end) as favorite_genre_listen_share,
        {#- rounded: the sum's last bits depend on the order the engine adds in #}
        round({{ entropy_bits('listen_share') }}, 12) as genre_entropy_bits
    from user_genre_affinity
    group by user_id
),

final as (
    select
        dim_users.user_id,
        dim_users.favorite_genre,
        coalesce(listen_stats.total_listens, 0) as total_listens,
        coalesce(listen_stats.distinct_tracks, 0) as distinct_tracks,
        coalesce(artist_stats.distinct_artists, 0) as distinct_artists,
        genre_stats.favorite_genre_listen_share,
        top_genres.top_genre,
        genre_stats.genre_entropy_bits,
        dim_users.signed_up_at,
        listen_stats.last_new_listen_at
    from dim_users
    left join listen_stats
        on dim_users.user_id = listen_stats.user_id
    left join artist_stats
        on dim_users.user_id = artist_stats.user_id
    left join top_genres
        on dim_users.user_id = top_genres.user_id
    left join genre_stats
        on dim_users.user_id = genre_stats.user_id
)

select * from final
