with

stg_moovitamix__tracks as (
    select * from {{ ref('stg_moovitamix__tracks') }}
),

final as (
    select
        track_id,
        track_name,
        artist_name,
        songwriters,
        album_name,
        duration_seconds,
        genres,
        released_at,
        updated_at,
        loaded_at
    from stg_moovitamix__tracks
)

select * from final
