{#
    Schemas are named by layer (staging, marts, features), as the `+schema` of
    each folder in dbt_project.yml says, not dbt's default `<target schema>_<custom schema>`
    (`main_staging`). A model without a custom schema lands in the target's schema.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
