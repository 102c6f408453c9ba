{#
    The permanent record of listening over time: one row per (user_id, listen_position,
    track_id), stamped with the load in which dbt first saw that track at that position. Raw
    keeps only each user's newest list, so this history cannot be rebuilt: `full_refresh: false`
    makes `dbt build --full-refresh` leave it alone (drop it by hand only to start afresh).

    Each run reads only the list versions loaded after the latest `first_seen_at` recorded (the
    filter comes before the unnest), and appends the (position, track) pairs not recorded yet:
    the positions a list grew by, and every position of a list the API replaced (the real
    service regenerates its data when it restarts). The cost follows the lists that changed.
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

stg_moovitamix__listen_history as (
    select * from {{ ref('stg_moovitamix__listen_history') }}
),

{% if is_incremental() %}

recorded_listen_events as (
    select * from {{ this }}
),

changed_lists as (
    select *
    from stg_moovitamix__listen_history
    where loaded_at > (
        select coalesce(max(first_seen_at), cast('1970-01-01' as timestamp))
        from recorded_listen_events
    )
),

changed_lists_listens as (
    {{ unnest_listen_lists('changed_lists') }}
),

new_listens as (
    {# a (position, track) not recorded yet: the list grew, or the API replaced its contents #}
    select changed_lists_listens.*
    from changed_lists_listens
    left join recorded_listen_events
        on changed_lists_listens.user_id = recorded_listen_events.user_id
        and changed_lists_listens.listen_position = recorded_listen_events.listen_position
        and changed_lists_listens.track_id = recorded_listen_events.track_id
    where recorded_listen_events.user_id is null
),

{% else %}

    new_listens as (
        {{ unnest_listen_lists('stg_moovitamix__listen_history') }}
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
