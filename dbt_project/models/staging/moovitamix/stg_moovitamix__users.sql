{# The current version of each user record (scd2 rows with no end): one row per live user. #}

with

source as (
    select * from {{ source('moovitamix', 'users') }}
),

current_versions as (
    select *
    from source
    where _dlt_valid_to is null
),

renamed as (
    select
        id as user_id,
        {#- names and e-mail stay in raw: no model needs them (README, Privacy) -#}
        gender,
        favorite_genres as favorite_genre,
        {{ to_utc_timestamp('created_at') }} as signed_up_at,
        {{ to_utc_timestamp('updated_at') }} as updated_at,
        _row_hash as record_version,
        _dlt_load_id as load_id,
        {{ to_utc_timestamp('_dlt_valid_from') }} as loaded_at
    from current_versions
)

select * from renamed
