{#
    Tests that read tonight's rows. A per-user incremental model rewrites only the users with a
    change loaded since its last build, so the rows of every other user are the rows an earlier
    build already tested: a test whose verdict is per user (a key that starts with user_id) needs
    to read only the users changed since the last build whose tests all passed.

    That time is kept in one row, `intermediate.dbt_tested_through`: the newest load (dlt's
    `_dlt_loads`) of the last `dbt build` that built every model with such a test, ran those
    tests and failed nothing. The on-run-start hook creates the table; the on-run-end hook writes it, or empties
    it when anything failed, so the next build tests whole tables again. int_users_to_test holds
    the users changed since; a test given `users_to_test` reads only their rows when
    `tests_read_changed_users()` says so. Only DuckDB builds incrementally (Spark rebuilds
    every table): elsewhere the table is not kept and tests read whole tables.
#}
{% macro tested_through_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema='intermediate', identifier='dbt_tested_through'
    )) }}
{%- endmacro %}

{#
    True when a test given `users_to_test` may read only those users' rows: a `dbt build`
    without --full-refresh on DuckDB, after a build whose tests passed (the table holds its
    time). `dbt test`, a full refresh and a build after a failed one read whole tables. Decided
    here, once per test, so that the test's filter is a plain semi-join (an `or` in it would
    read every row).
#}
{% macro tests_read_changed_users() -%}
    {%- if not execute or target.type != 'duckdb' -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if flags.WHICH != 'build' or flags.FULL_REFRESH -%}
        {{ return(false) }}
    {%- endif -%}
    {#- a build that does not rebuild int_users_to_test would read last build's users -#}
    {%- if 'model.' ~ project_name ~ '.int_users_to_test' not in selected_resources -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set recorded = run_query(
        "select count(*) from " ~ tested_through_relation() ~ " where tested_through is not null"
    ) -%}
    {{ return(recorded.columns[0].values()[0] > 0) }}
{%- endmacro %}

{# on-run-start: the table, empty (no build has passed yet: whole tables are tested). #}
{% macro create_tested_through() -%}
    {%- if target.type == 'duckdb' -%}
        create schema if not exists {{ tested_through_relation().schema }};
        create table if not exists {{ tested_through_relation() }} (tested_through timestamp);
    {%- endif -%}
{%- endmacro %}

{#
    on-run-end: after a `dbt build` that failed nothing, built every model with a test given
    `users_to_test` and passed every such test, the newest load it read; after one that failed
    anything, nothing (the next build tests whole tables); after any other command, or a build
    that left out one of those models or tests, the row as it was.
#}
{% macro record_tested_through(results) -%}
    {%- if not execute or target.type != 'duckdb' or flags.WHICH != 'build' -%}
        {{ return('') }}
    {%- endif -%}
    {%- set done, failed = [], [] -%}
    {%- for result in results -%}
        {%- if result.status in ('error', 'fail', 'runtime error') -%}
            {%- do failed.append(result.node.unique_id) -%}
        {%- elif result.status in ('success', 'pass', 'warn') -%}
            {%- do done.append(result.node.unique_id) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set needed = [] -%}
    {%- for node in graph.nodes.values() -%}
        {%- set arguments = (node.get('test_metadata') or {}).get('kwargs') or {} -%}
        {%- if node.resource_type == 'test' and 'users_to_test' in arguments -%}
            {%- do needed.extend([node.unique_id, node.attached_node]) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if failed -%}
        delete from {{ tested_through_relation() }};
    {%- elif needed | reject('in', done) | list | length == 0 -%}
        delete from {{ tested_through_relation() }};
        insert into {{ tested_through_relation() }}
        select max({{ to_utc_timestamp('inserted_at') }})
        from {{ source('moovitamix', '_dlt_loads') }}
        where status = 0;
    {%- endif -%}
{%- endmacro %}
