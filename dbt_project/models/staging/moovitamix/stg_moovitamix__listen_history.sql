{#
    The latest listen list of every user ever seen, deleted ones flagged: one row per user,
    typed and counted. A table: the listen marts read it three times a build (fct_listens and
    its post-hook, fct_listen_events), and each read of a view would parse every list again.
#}

{{ config(materialized='table') }}

with

base_moovitamix__listen_history as (
    select * from {{ ref('base_moovitamix__listen_history') }}
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
    from base_moovitamix__listen_history
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
