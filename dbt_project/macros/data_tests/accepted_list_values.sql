{#
    Every element of the list column `column_name` must be one of `values`. Returns one row per
    element outside them, so the failure count is the number of such elements.
#}
{% test accepted_list_values(model, column_name, values) %}

with elements as (
    select unnested_elements.list_element
    from {{ model }}
    {{ moovitamix.cross_join_unnest(column_name, 'list_element') }}
),

unexpected_elements as (
    select list_element
    from elements
    where list_element not in (
        {%- for value in values %}
        '{{ value | replace("'", "''") }}'{{ "," if not loop.last }}
        {%- endfor %}
    )
)

select * from unexpected_elements

{% endtest %}
