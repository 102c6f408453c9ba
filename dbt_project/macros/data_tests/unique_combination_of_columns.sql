{#
    Fails on every combination of `combination_of_columns` that occurs in more than one row:
    the unique test of a composite key. Returns one row per duplicated combination.

    With `users_to_test` (a ref to int_users_to_test), for a key that starts with user_id: an
    incremental `dbt build` reads only those users' rows, the ones rewritten since the last build
    whose tests passed; a duplicate can only be between two rows of one user, and every other
    user's rows were tested then. A full refresh, `dbt test`, and a build after a failed one
    (the table of macros/incremental/tested_through.sql is empty) read the whole table.
#}
{% test unique_combination_of_columns(model, combination_of_columns, users_to_test=none) %}

{%- if users_to_test is not none and combination_of_columns[0] != 'user_id' -%}
    {{ exceptions.raise_compiler_error(
        "unique_combination_of_columns on " ~ model ~ ": users_to_test needs a key that starts "
        ~ "with user_id, not " ~ combination_of_columns | join(', ')
    ) }}
{%- endif %}

with tested_rows as (
    select *
    from {{ model }}
    {%- if users_to_test is not none and tests_read_changed_users() %}
    where user_id in (select user_id from {{ users_to_test }})
    {%- endif %}
),

duplicated_combinations as (
    select
        {{ combination_of_columns | join(',\n        ') }},
        count(*) as row_count
    from tested_rows
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
)

select * from duplicated_combinations

{% endtest %}
