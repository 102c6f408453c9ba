{#
    The latest listen list of every user ever seen, deleted ones included: one row per user.
    The extractor keeps a list only on each user's latest version (older versions have their
    `items` nulled), so the latest version is the one to read: the current one for a live user,
    the last retired one for a user deleted upstream. Listen events derive from this model.
#}

with

source as (
    select * from {{ source('moovitamix', 'listen_history') }}
),

ranked_versions as (
    select
        *,
        row_number() over (partition by user_id order by _dlt_valid_from desc) as version_rank
    from source
),

latest_versions as (
    select *
    from ranked_versions
    where version_rank = 1
),

parsed as (
    select
        user_id,
        {{ json_to_bigint_list('items') }} as track_ids,
        _dlt_valid_to is not null as is_deleted_upstream,
        {{ to_utc_timestamp('created_at') }} as created_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        _row_hash as record_version,
        _dlt_load_id as load_id,
        {{ to_utc_timestamp('_dlt_valid_from') }} as loaded_at,
        {{ to_utc_timestamp('_dlt_valid_to') }} as deleted_at
    from latest_versions
),

counted as (
    select
        user_id,
        track_ids,
        coalesce({{ list_length('track_ids') }}, 0) as list_length,
        coalesce({{ list_length('track_ids') }} - {{ list_null_count('track_ids') }}, 0) as listen_count,
        coalesce({{ list_null_count('track_ids') }}, 0) as null_track_id_count,
        is_deleted_upstream,
        created_at,
        updated_at,
        record_version,
        load_id,
        loaded_at,
        deleted_at
    from parsed
)

select * from counted
