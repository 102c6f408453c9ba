{#
    API records that broke the contract and were kept aside by the extractor: one row per record.
    dlt creates raw.quarantined_records only when a first record is quarantined, so until then
    this model is an empty view of the same columns rather than a failing build.
#}

{%- set quarantine_source = source('moovitamix', 'quarantined_records') %}
{%- set quarantine_relation = load_relation(quarantine_source) if execute else none %}

with

{% if quarantine_relation is not none -%}
source as (
    select * from {{ quarantine_source }}
),
{%- else -%}
    source as (
        {#- the columns dlt creates, no rows -#}
        select
            cast(null as {{ dbt.type_string() }}) as endpoint,
            cast(null as {{ dbt.type_bigint() }}) as page,
            cast(null as {{ dbt.type_string() }}) as reason,
            cast(null as {{ dbt.type_string() }}) as record,
            cast(null as {{ dbt.type_string() }}) as _dlt_load_id
        where false
    ),
{%- endif %}

renamed as (
    select
        endpoint,
        page as page_number,
        reason,
        record as record_json,
        _dlt_load_id as load_id
    from source
)

select * from renamed
