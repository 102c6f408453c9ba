{#
    The recommender's latest recommendations with each track's name, artist and genres, for
    analysts. The rows live in schema ml, written by `python -m recommender score` after each
    successful `dbt build`; a view, so it shows the latest scoring as soon as it is written.
    The inner join on dim_users drops users deleted upstream since the last scoring. The ml
    tables exist before the recommender first writes them: dbt_project.yml's on-run-start hook
    creates them (macro create_ml_tables), so a fresh clone's first build works.
#}

{#- On Spark the recommender's tables stay in the DuckDB warehouse: nightly/engine.py builds this
    view there, over the marts the Spark build made. -#}
{{ config(materialized='view', enabled=target.type != 'spark') }}

with

recommendations as (
    select * from {{ source('ml', 'recommendations') }}
),

model_versions as (
    select * from {{ source('ml', 'model_versions') }}
),

dim_users as (
    select * from {{ ref('dim_users') }}
),

dim_tracks as (
    select * from {{ ref('dim_tracks') }}
),

final as (
    select
        recommendations.user_id,
        recommendations.rank,
        recommendations.track_id,
        dim_tracks.track_name,
        dim_tracks.artist_name,
        dim_tracks.album_name,
        dim_tracks.genres,
        recommendations.score,
        recommendations.is_cold_start,
        recommendations.model_version,
        model_versions.model_name,
        recommendations.generated_at
    from recommendations
    inner join dim_users
        on recommendations.user_id = dim_users.user_id
    left join dim_tracks
        on recommendations.track_id = dim_tracks.track_id
    left join model_versions
        on recommendations.model_version = model_versions.model_version
)

select * from final
