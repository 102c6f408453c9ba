{#
    Reconciliation from source to mart: fct_listens holds exactly one row per non-null track id
    in the current listen lists of the current users, counted here straight from raw (not from
    staging, so a staging bug cannot hide itself). Returns one row, the two counts, on mismatch.
#}

with

raw_listen_history as (
    select * from {{ source('moovitamix', 'listen_history') }}
),

raw_users as (
    select * from {{ source('moovitamix', 'users') }}
),

fct_listens as (
    select * from {{ ref('fct_listens') }}
),

current_users as (
    select id as user_id
    from raw_users
    where _dlt_valid_to is null
),

current_lists as (
    select {{ json_to_bigint_list('items') }} as track_ids
    from raw_listen_history
    where _dlt_valid_to is null
        and user_id in (select user_id from current_users)
),

expected as (
    select
        coalesce(sum({{ list_length('track_ids') }}), 0)
            - coalesce(sum({{ list_null_count('track_ids') }}), 0) as expected_listens
    from current_lists
),

actual as (
    select count(*) as actual_listens
    from fct_listens
),

final as (
    select
        expected.expected_listens,
        actual.actual_listens
    from expected
    cross join actual
    where expected.expected_listens <> actual.actual_listens
)

select * from final
