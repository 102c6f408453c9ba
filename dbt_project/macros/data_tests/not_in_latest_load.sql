{#
    Rows whose load id (`column_name`) is the latest successful load's, per the `loads` model
    (load_id, loaded_at): one row per such row. On quarantined records it warns about what
    tonight's load set aside, not about every record ever kept.
#}
{% test not_in_latest_load(model, column_name, loads) %}

with latest_load as (
    select load_id
    from {{ loads }}
    where loaded_at = (select max(loaded_at) from {{ loads }})
),

rows_of_latest_load as (
    select *
    from {{ model }}
    where {{ column_name }} in (select load_id from latest_load)
)

select * from rows_of_latest_load

{% endtest %}
