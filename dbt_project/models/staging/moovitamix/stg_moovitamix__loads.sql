{# One row per successful dlt load into raw (status 0): when the pipeline last delivered data. #}

with

source as (
    select * from {{ source('moovitamix', '_dlt_loads') }}
),

successful_loads as (
    select *
    from source
    where status = 0
),

renamed as (
    select
        load_id,
        schema_name as dlt_schema_name,
        {{ to_utc_timestamp('inserted_at') }} as loaded_at
    from successful_loads
)

select * from renamed
