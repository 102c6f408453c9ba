{#
    The current listen list of each live user: one row per user present in /listen_history now.
    The latest lists minus the users deleted upstream, so both models parse lists one way.
#}

with

stg_moovitamix__listen_history_latest as (
    select * from {{ ref('stg_moovitamix__listen_history_latest') }}
),

live_users_lists as (
    select
        user_id,
        track_ids,
        list_length,
        listen_count,
        null_track_id_count,
        created_at,
        updated_at,
        record_version,
        load_id,
        loaded_at
    from stg_moovitamix__listen_history_latest
    where not is_deleted_upstream
)

select * from live_users_lists
