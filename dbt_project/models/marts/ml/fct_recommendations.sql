{#
    The recommender's latest recommendations with each track's name, artist and genres, for
    analysts. The rows live in schema ml, written by `python -m recommender score` after each
    successful `dbt build`; a view, so it shows the latest scoring as soon as it is written.
    The inner join on dim_users drops users deleted upstream since the last scoring.

    The pre-hook creates the ml tables, empty, on a warehouse the recommender has not written
    yet, so that a fresh clone's first build succeeds. The recommender creates them with the
    same definition (ML_SCHEMA_DDL in recommender/warehouse.py; the pytest suite compares them).
#}

{{
    config(
        materialized='view',
        pre_hook=[
            "create schema if not exists ml",
            "create table if not exists ml.model_versions (
                model_version bigint not null,
                model_name varchar not null,
                model_kind varchar not null,
                status varchar not null,
                status_reason varchar not null,
                trained_at timestamp not null,
                split_kind varchar not null,
                window_start_at timestamp not null,
                window_end_at timestamp not null,
                holdout_start_at timestamp,
                train_listens bigint not null,
                train_users bigint not null,
                train_tracks bigint not null,
                holdout_users bigint not null,
                holdout_tracks bigint not null,
                hyperparameters json not null,
                recall_at_10 double not null,
                ndcg_at_10 double not null,
                catalogue_coverage double not null,
                train_seconds double not null,
                baseline_metrics json not null,
                artifact_path varchar not null
            )",
            "create table if not exists ml.recommendations (
                user_id bigint not null,
                rank integer not null,
                track_id bigint not null,
                score double not null,
                model_version bigint not null,
                is_cold_start boolean not null,
                generated_at timestamp not null
            )",
        ],
    )
}}

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
