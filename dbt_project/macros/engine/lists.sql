{# A JSON array of integers (JSON null allowed) as a list of bigint, null elements kept. #}
{% macro json_to_bigint_list(column) -%}
    {{ return(adapter.dispatch('json_to_bigint_list', 'moovitamix')(column)) }}
{%- endmacro %}

{% macro default__json_to_bigint_list(column) -%}
    {{ engine_not_ported('json_to_bigint_list') }}
{%- endmacro %}

{% macro duckdb__json_to_bigint_list(column) -%}
    cast({{ column }} as bigint[])
{%- endmacro %}


{# Number of elements of a list, null elements included; null for a null list. #}
{% macro list_length(list_expression) -%}
    {{ return(adapter.dispatch('list_length', 'moovitamix')(list_expression)) }}
{%- endmacro %}

{% macro default__list_length(list_expression) -%}
    {{ engine_not_ported('list_length') }}
{%- endmacro %}

{% macro duckdb__list_length(list_expression) -%}
    len({{ list_expression }})
{%- endmacro %}


{# Number of null elements of a list; null for a null list. #}
{% macro list_null_count(list_expression) -%}
    {{ return(adapter.dispatch('list_null_count', 'moovitamix')(list_expression)) }}
{%- endmacro %}

{% macro default__list_null_count(list_expression) -%}
    {{ engine_not_ported('list_null_count') }}
{%- endmacro %}

{% macro duckdb__list_null_count(list_expression) -%}
    (len({{ list_expression }}) - len(list_filter({{ list_expression }}, lambda element: element is not null)))
{%- endmacro %}


{#
    A join clause that turns each row's list into one row per element, with the element's
    1-based position in the list. Rows with a null or empty list yield no row. Use after a
    `from`: `from lists {{ cross_join_unnest_with_position('lists.track_ids', 'track_id',
    'listen_position') }}`.
#}
{% macro cross_join_unnest_with_position(list_expression, element_alias, position_alias) -%}
    {{ return(adapter.dispatch('cross_join_unnest_with_position', 'moovitamix')(
        list_expression, element_alias, position_alias)) }}
{%- endmacro %}

{% macro default__cross_join_unnest_with_position(list_expression, element_alias, position_alias) -%}
    {{ engine_not_ported('cross_join_unnest_with_position') }}
{%- endmacro %}

{% macro duckdb__cross_join_unnest_with_position(list_expression, element_alias, position_alias) -%}
    cross join unnest({{ list_expression }}) with ordinality
        as unnested_elements ({{ element_alias }}, {{ position_alias }})
{%- endmacro %}


{# As cross_join_unnest_with_position, without the position. #}
{% macro cross_join_unnest(list_expression, element_alias) -%}
    {{ return(adapter.dispatch('cross_join_unnest', 'moovitamix')(list_expression, element_alias)) }}
{%- endmacro %}

{% macro default__cross_join_unnest(list_expression, element_alias) -%}
    {{ engine_not_ported('cross_join_unnest') }}
{%- endmacro %}

{% macro duckdb__cross_join_unnest(list_expression, element_alias) -%}
    cross join unnest({{ list_expression }}) as unnested_elements ({{ element_alias }})
{%- endmacro %}

{% macro spark__json_to_bigint_list(column) -%}
    from_json({{ column }}, 'array<bigint>')
{%- endmacro %}

{% macro spark__list_length(list_expression) -%}
    array_size({{ list_expression }})
{%- endmacro %}

{% macro spark__list_null_count(list_expression) -%}
    (array_size({{ list_expression }}) - array_size(filter({{ list_expression }}, element -> element is not null)))
{%- endmacro %}

{#- Spark's posexplode counts from 0: inline() over (element, 1-based position) structs instead -#}
{% macro spark__cross_join_unnest_with_position(list_expression, element_alias, position_alias) -%}
    lateral view inline(
        transform({{ list_expression }}, (element, element_index) -> named_struct(
            '{{ element_alias }}', element, '{{ position_alias }}', element_index + 1))
    ) unnested_elements as {{ element_alias }}, {{ position_alias }}
{%- endmacro %}

{% macro spark__cross_join_unnest(list_expression, element_alias) -%}
    lateral view explode({{ list_expression }}) unnested_elements as {{ element_alias }}
{%- endmacro %}
