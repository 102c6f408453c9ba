{#
    Fails when the model's row count is outside [min_value, max_value]. The bounds come from the
    `row_count_bounds` var of dbt_project.yml, by name (`bounds: entities`); `min_value` or
    `max_value` given to the test override that entry. Returns one row (the count) on failure.
#}
{% test row_count_between(model, bounds=none, min_value=none, max_value=none) %}

{%- set named = var('row_count_bounds', {}).get(bounds, {}) if bounds else {} -%}
{%- if bounds and not named -%}
    {{ exceptions.raise_compiler_error("row_count_between: no entry '" ~ bounds ~ "' in var row_count_bounds") }}
{%- endif -%}
{%- set low = min_value if min_value is not none else named.get('min_value') -%}
{%- set high = max_value if max_value is not none else named.get('max_value') -%}

with row_count as (
    select count(*) as row_count from {{ model }}
),

out_of_bounds as (
    select row_count
    from row_count
    where false
        {%- if low is not none %} or row_count < {{ low }}{% endif %}
        {%- if high is not none %} or row_count > {{ high }}{% endif %}
)

select * from out_of_bounds

{% endtest %}
