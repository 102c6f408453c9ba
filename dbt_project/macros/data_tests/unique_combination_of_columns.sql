{#
    Fails on every combination of `combination_of_columns` that occurs in more than one row:
    the unique test of a composite key. Returns one row per duplicated combination.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with duplicated_combinations as (
    select
        {{ combination_of_columns | join(',\n        ') }},
        count(*) as row_count
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
)

select * from duplicated_combinations

{% endtest %}
