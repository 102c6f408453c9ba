{#
    One row per (user, track) a current user has played. Incremental by user (delete+insert on
    user_id), as fct_listens: a run counts again only the users whose listens fct_listens may
    have rewritten since the newest `last_seen_at` held (macro users_changed_since), and the
    post-hook removes the users fct_listens no longer holds. A --full-refresh gives the same
    rows (the pytest suite checks it). On Spark a table, rebuilt whole each night (fct_listens).
#}

{{
    config(
        materialized='incremental' if target.type == 'duckdb' else 'table',
        incremental_strategy='delete+insert',
        unique_key='user_id',
        on_schema_change='sync_all_columns',
        post_hook="
            delete from {{ this }}
            where user_id not in (select user_id from {{ ref('fct_listens') }})
        " if target.type == 'duckdb' else [],
    )
}}

-- depends_on: {{ ref('dim_users') }}
-- depends_on: {{ ref('stg_moovitamix__listen_history') }}

with

fct_listens as (
    select * from {{ ref('fct_listens') }}
),

{% if is_incremental() %}
changed_users as (
    {{ users_changed_since('last_seen_at') }}
),
{% endif %}

user_tracks as (
    select
        user_id,
        track_id,
        count(*) as listen_count,
        min(first_seen_at) as first_seen_at,
        max(first_seen_at) as last_seen_at
    from fct_listens
    {% if is_incremental() %}
    where user_id in (select user_id from changed_users)
    {% endif %}
    group by
        user_id,
        track_id
),

final as (
    select * from user_tracks
)

select * from final
