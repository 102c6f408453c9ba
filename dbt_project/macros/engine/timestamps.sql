{# A time-zone-aware timestamp as a plain timestamp of UTC wall-clock time. #}
{% macro to_utc_timestamp(column) -%}
    {{ return(adapter.dispatch('to_utc_timestamp', 'moovitamix')(column)) }}
{%- endmacro %}

{% macro default__to_utc_timestamp(column) -%}
    {{ engine_not_ported('to_utc_timestamp') }}
{%- endmacro %}

{% macro duckdb__to_utc_timestamp(column) -%}
    timezone('UTC', {{ column }})
{%- endmacro %}


{# Whole days (24-hour periods, rounded down) from `start_at` to `end_at`, both UTC timestamps. #}
{% macro whole_days_between(start_at, end_at) -%}
    {{ return(adapter.dispatch('whole_days_between', 'moovitamix')(start_at, end_at)) }}
{%- endmacro %}

{% macro default__whole_days_between(start_at, end_at) -%}
    {{ engine_not_ported('whole_days_between') }}
{%- endmacro %}

{% macro duckdb__whole_days_between(start_at, end_at) -%}
    cast(floor(date_diff('second', {{ start_at }}, {{ end_at }}) / 86400.0) as integer)
{%- endmacro %}

{#- the Spark target's session time zone is UTC (profiles.yml), so the cast keeps UTC wall-clock time -#}
{% macro spark__to_utc_timestamp(column) -%}
    cast({{ column }} as timestamp_ntz)
{%- endmacro %}

{% macro spark__whole_days_between(start_at, end_at) -%}
    cast(floor(timestampdiff(SECOND, {{ start_at }}, {{ end_at }}) / 86400.0) as integer)
{%- endmacro %}
