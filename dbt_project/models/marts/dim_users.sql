with

stg_moovitamix__users as (
    select * from {{ ref('stg_moovitamix__users') }}
),

final as (
    {#- names and e-mail never leave raw; gender only with privacy.publish_gender -#}
    select
        user_id,
        {% if var('publish_gender') -%}
            gender,
        {%- else -%}
            cast(null as {{ dbt.type_string() }}) as gender,
        {%- endif %}
        favorite_genre,
        signed_up_at,
        updated_at,
        loaded_at
    from stg_moovitamix__users
)

select * from final
