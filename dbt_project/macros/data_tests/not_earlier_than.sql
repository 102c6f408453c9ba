{#
    Rows where `column_name` is earlier than `reference_column` of the same row (e.g. a record
    updated before it was created). Returns one row per offending row.
#}
{% test not_earlier_than(model, column_name, reference_column) %}

with offending_rows as (
    select *
    from {{ model }}
    where {{ column_name }} < {{ reference_column }}
)

select * from offending_rows

{% endtest %}
