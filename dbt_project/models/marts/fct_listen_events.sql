{#
    The permanent record of listening over time: one row per (user_id, listen_position), stamped
    with the load in which dbt first saw that position. Raw keeps only each user's newest list,
    so this history cannot be rebuilt: `full_refresh: false` makes `dbt build --full-refresh`
    leave it alone (drop it by hand only to start the record again).

    Each run reads only the list versions loaded after the latest `first_seen_at` recorded (the
    filter comes before the unnest), and appends, per user, only the positions beyond the last
    one recorded: the cost follows the lists that changed since the last run.
#}

{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        on_schema_change='append_new_columns',
    )
}}

with

stg_moovitamix__listen_history_latest as (
    select * from {{ ref('stg_moovitamix__listen_history_latest') }}
),

{% if is_incremental() %}

recorded_listen_events as (
    select * from {{ this }}
),

changed_lists as (
    select *
    from stg_moovitamix__listen_history_latest
    where loaded_at > (
        select coalesce(max(first_seen_at), cast('1970-01-01' as timestamp))
        from recorded_listen_events
    )
),

changed_lists_listens as (
    {{ unnest_listen_lists('changed_lists') }}
),

last_recorded_positions as (
    select
        user_id,
        max(listen_position) as last_recorded_position
    from recorded_listen_events
    where user_id in (select user_id from changed_lists)
    group by user_id
),

new_listens as (
    select changed_lists_listens.*
    from changed_lists_listens
    left join last_recorded_positions
        on changed_lists_listens.user_id = last_recorded_positions.user_id
    where changed_lists_listens.listen_position
        > coalesce(last_recorded_positions.last_recorded_position, 0)
),

{% else %}

    new_listens as (
        {{ unnest_listen_lists('stg_moovitamix__listen_history_latest') }}
    ),

{% endif %}

final as (
    select
        user_id,
        listen_position,
        track_id,
        list_loaded_at as first_seen_at,
        list_load_id as first_seen_load_id
    from new_listens
)

select * from final
