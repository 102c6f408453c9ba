{#
    The users whose rows in a per-user incremental model may have changed since its watermark,
    the newest value of `watermark_column` in the model's own rows (a load time its last build
    read; 1970 for an empty table): their listen list was loaded or retired after it (an
    emptied list too, which fct_listens no longer holds), their user record was loaded after it
    (new, edited, back), or, with `through_tracks`, they play a track whose catalogue record
    was loaded, replaced or retired after it (stg_moovitamix__track_changes). Users deleted from /users are not here: each
    model's post-hook deletes them.

    It reads the relations themselves, not the model's CTEs: DuckDB materialises a CTE read
    twice, which would hold a copy of fct_listens in memory. Called inside `is_incremental()`,
    where dbt's parser does not look, so a model declares what it reads here (a CTE or a
    `-- depends_on:` comment).

    A watermark earlier than the model's last build only rebuilds more users than needed, never
    fewer, so each model takes it from its own rows: a column holding its newest
    `first_seen_at`, a load time its build had read.
#}
{% macro users_changed_since(watermark_column, through_tracks=false) -%}
    {{ users_changed_after(
        "(select coalesce(max(" ~ watermark_column ~ "), cast('1970-01-01' as timestamp)) from "
        ~ this ~ ")",
        ref('fct_listens') if through_tracks else none,
    ) }}
{%- endmacro %}

{#
    The users with a change loaded after `since` (a SQL expression of a UTC timestamp): the
    select of users_changed_since, for any point in time, with the players of changed tracks
    read from `players` (a relation of user_id, track_id rows; none: not counted).
    int_users_to_test asks it for the changes since the last build whose tests passed.
#}
{% macro users_changed_after(since, players=none) -%}
    select user_id
    from {{ ref('stg_moovitamix__listen_history') }}
    where loaded_at > {{ since }} or deleted_at > {{ since }}
    union
    select user_id
    from {{ ref('dim_users') }}
    where loaded_at > {{ since }}
    {%- if players is not none %}
    union
    select user_id
    from {{ players }}
    where track_id in (
        select track_id
        from {{ ref('stg_moovitamix__track_changes') }}
        where changed_at > {{ since }}
    )
    {%- endif %}
{%- endmacro %}
