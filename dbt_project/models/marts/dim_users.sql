with

stg_moovitamix__users as (
    select * from {{ ref('stg_moovitamix__users') }}
),

final as (
    {#- names and email are PII: they stay in staging -#}
    select
        user_id,
        gender,
        favorite_genre,
        signed_up_at,
        updated_at,
        loaded_at
    from stg_moovitamix__users
)

select * from final
