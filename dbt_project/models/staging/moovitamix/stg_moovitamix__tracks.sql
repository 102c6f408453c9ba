{# The current version of each track record: one row per live track, duration and genres parsed. #}

with

source as (
    select * from {{ source('moovitamix', 'tracks') }}
),

current_versions as (
    select *
    from source
    where _dlt_valid_to is null
),

renamed as (
    select
        id as track_id,
        name as track_name,
        artist as artist_name,
        songwriters,
        album as album_name,
        duration as duration_text,
        {{ parse_duration_seconds('duration') }} as duration_seconds,
        genres as genres_text,
        {{ normalise_genre_list('genres') }} as genres,
        {{ to_utc_timestamp('created_at') }} as released_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        _row_hash as record_version,
        _dlt_load_id as load_id,
        {{ to_utc_timestamp('_dlt_valid_from') }} as loaded_at
    from current_versions
)

select * from renamed
