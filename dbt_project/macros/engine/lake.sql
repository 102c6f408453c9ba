{#
    The raw sources where the engine reads them. On DuckDB they are the warehouse's own `raw`
    tables: nothing to do. On Spark, the nightly job exports raw to a Parquet snapshot in the lake
    (extract/lake.py) and core/engine.py names it (MOOVITAMIX_LAKE_RAW, MOOVITAMIX_LAKE_TABLES):
    each table is (re)declared as an external table of schema raw over its snapshot folder, so
    `source('moovitamix', ...)` reads tonight's raw. Dropping an external table leaves its files.
    Run by the on-run-start hook of dbt_project.yml, before any model.
#}
{% macro register_lake_sources() -%}
    {{ return(adapter.dispatch('register_lake_sources', 'moovitamix')()) }}
{%- endmacro %}

{% macro default__register_lake_sources() -%}
    {{ engine_not_ported('register_lake_sources') }}
{%- endmacro %}

{% macro duckdb__register_lake_sources() -%}
{%- endmacro %}

{% macro spark__register_lake_sources() -%}
    {%- if execute -%}
        {%- set snapshot = env_var('MOOVITAMIX_LAKE_RAW', '') -%}
        {%- if not snapshot -%}
            {{ exceptions.raise_compiler_error(
                "no raw snapshot in the lake (MOOVITAMIX_LAKE_RAW is empty): on the Spark engine "
                ~ "the nightly job exports raw there first; run `make elt`"
            ) }}
        {%- endif -%}
        {%- do run_query('create schema if not exists raw') -%}
        {%- for table in env_var('MOOVITAMIX_LAKE_TABLES', '').split(',') if table -%}
            {%- do run_query('drop table if exists raw.' ~ table) -%}
            {%- do run_query(
                "create table raw." ~ table ~ " using parquet location '" ~ snapshot ~ "/" ~ table ~ "'"
            ) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
