{#
    A listen of a track with n genres counts 1/n towards each of them, so a user's shares sum
    to 1 over the genres of the tracks they played (listens of tracks with no genre, or missing
    from /tracks, carry no genre and are left out).
#}

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
        fct_listens.user_id,
        track_genres.genre,
        sum(track_genres.genre_weight) as weighted_listens
    from fct_listens
    inner join track_genres
        on fct_listens.track_id = track_genres.track_id
    group by
        fct_listens.user_id,
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
        user_genre_listens.genre = dim_users.favorite_genre as is_favorite_genre
    from user_genre_listens
    inner join user_genre_totals
        on user_genre_listens.user_id = user_genre_totals.user_id
    inner join dim_users
        on user_genre_listens.user_id = dim_users.user_id
)

select * from final
