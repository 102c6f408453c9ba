{#
    Shannon entropy in bits of a distribution given one row per outcome with its probability
    `share_column` (shares summing to 1 within the group): -sum(p * log2(p)). An aggregate.
#}
{% macro entropy_bits(share_column) -%}
    {{ return(adapter.dispatch('entropy_bits', 'moovitamix')(share_column)) }}
{%- endmacro %}

{% macro default__entropy_bits(share_column) -%}
    {{ engine_not_ported('entropy_bits') }}
{%- endmacro %}

{% macro duckdb__entropy_bits(share_column) -%}
    coalesce(-sum(case when {{ share_column }} > 0 then {{ share_column }} * log2({{ share_column }}) end), 0)
{%- endmacro %}

{% macro spark__entropy_bits(share_column) -%}
    coalesce(-sum(case when {{ share_column }} > 0 then {{ share_column }} * log2({{ share_column }}) end), 0)
{%- endmacro %}
