{# The current listen list of each live user: one row per user present in /listen_history now. #}

with

source as (
    select * from {{ source('moovitamix', 'listen_history') }}
),

current_versions as (
    select *
    from source
    where _dlt_valid_to is null
),

parsed as (
    select
        user_id,
        {{ json_to_bigint_list('items') }} as track_ids,
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        _row_hash as record_version,
        _dlt_load_id as load_id,
        {{ to_utc_timestamp('_dlt_valid_from') }} as loaded_at
    from current_versions
),

counted as (
    select
        user_id,
        track_ids,
        coalesce({{ list_length('track_ids') }}, 0) as list_length,
        coalesce({{ list_length('track_ids') }} - {{ list_null_count('track_ids') }}, 0) as listen_count,
        coalesce({{ list_null_count('track_ids') }}, 0) as null_track_id_count,
        created_at,
        updated_at,
        record_version,
        load_id,
        loaded_at
    from parsed
)

select * from counted
