{#
    The users whose rows a per-user model may have rewritten since the last `dbt build` whose
    tests all passed (macros/incremental/tested_through.sql): a change of their listens, user
    record or of a track they play was loaded after it. The tests of per-user keys read only
    these users' rows on an incremental build: every other user's rows are those already tested.
    A table, built once by each build for the tests that read it (a view would compute the users
    again for each). The players of a changed track come from fct_listen_events (everyone who
    ever played it, more than needed): a model downstream of fct_listens would make the tests
    of fct_listens wait for, and be skipped with, fct_listens' other tests. On Spark, which
    rebuilds every table, every user.
#}

-- depends_on: {{ ref('stg_moovitamix__listen_history') }}
-- depends_on: {{ ref('dim_users') }}
-- depends_on: {{ ref('fct_listen_events') }}
-- depends_on: {{ ref('stg_moovitamix__track_changes') }}

{% if target.type == 'duckdb' %}
{{ users_changed_after(
    "(select coalesce(max(tested_through), cast('1970-01-01' as timestamp)) from "
    ~ tested_through_relation() ~ ")",
    ref('fct_listen_events'),
) }}
{% else %}
select user_id from {{ ref('dim_users') }}
{% endif %}
