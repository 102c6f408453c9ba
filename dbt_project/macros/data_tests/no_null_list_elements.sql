{#
    Counts the null elements of the list column `column_name`: one row per null element (with the
    row's `key_column` and the element's position). Meant as a warning: the nulls are dropped
    downstream, and the warning says how many.
#}
{% test no_null_list_elements(model, column_name, key_column) %}

with elements as (
    select
        {{ key_column }},
        unnested_elements.list_element,
        unnested_elements.element_position
    from {{ model }}
    {{ moovitamix.cross_join_unnest_with_position(column_name, 'list_element', 'element_position') }}
),

null_elements as (
    select
        {{ key_column }},
        element_position
    from elements
    where list_element is null
)

select * from null_elements

{% endtest %}
