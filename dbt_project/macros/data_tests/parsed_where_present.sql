{#
    Rows where the source value `source_column` is present but its parsed form `column_name` is
    null: values the parser rejected as nonsense. Returns one row per rejected value.
#}
{% test parsed_where_present(model, column_name, source_column) %}

with rejected_values as (
    select {{ source_column }}
    from {{ model }}
    where {{ source_column }} is not null
        and {{ column_name }} is null
)

select * from rejected_values

{% endtest %}
