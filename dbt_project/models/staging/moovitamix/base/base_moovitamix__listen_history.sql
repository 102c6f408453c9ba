{#
    The latest version of each user ever seen in /listen_history, deleted ones included: one row
    per user, the raw table's versions deduplicated. The extractor keeps a list only on each
    user's latest version (older versions have their `items` nulled), so the latest version is
    the one to read: the current one for a live user, the last retired one for a user deleted
    upstream. Read only by stg_moovitamix__listen_history, which types it.
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
    select
        user_id,
        items,
        created_at,
        updated_at,
        _row_hash,
        _dlt_load_id,
        _dlt_valid_from,
        _dlt_valid_to
    from ranked_versions
    where version_rank = 1
)

select * from latest_versions
