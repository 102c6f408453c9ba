{#
    The recommender's tables (schema ml), created empty when missing. dbt owns their definition:
    the on-run-start hook of dbt_project.yml runs it before every dbt command runs a model or
    test, so a fresh warehouse builds before the first scoring, and the recommender (which reads
    marts this same build makes) writes into them.
#}
{% macro create_ml_tables() -%}
    {{ return(adapter.dispatch('create_ml_tables', 'moovitamix')()) }}
{%- endmacro %}

{% macro default__create_ml_tables() -%}
    {{ engine_not_ported('create_ml_tables') }}
{%- endmacro %}

{#-
    On Spark nothing: the recommender writes the DuckDB warehouse whatever the engine, and
    fct_recommendations, the one model that reads schema ml, is built there (nightly/engine.py).
-#}
{% macro spark__create_ml_tables() -%}
{%- endmacro %}

{% macro duckdb__create_ml_tables() -%}
create schema if not exists ml;
create table if not exists ml.model_versions (
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
    artifact_path varchar not null,
    eval_users bigint
);
-- a registry created before eval_users was recorded gains the column (null on its old rows)
alter table ml.model_versions add column if not exists eval_users bigint;
create table if not exists ml.recommendations (
    user_id bigint not null,
    rank integer not null,
    track_id bigint not null,
    score double not null,
    model_version bigint not null,
    is_cold_start boolean not null,
    generated_at timestamp not null
);
-- what each user's rows of ml.recommendations were computed from: scoring re-scores a user
-- only when these changed (recommender/README.md, "Scoring what changed")
create table if not exists ml.scored_users (
    user_id bigint not null,
    model_version bigint not null,
    inputs_hash ubigint not null,
    context_hash bigint not null,
    scored_at timestamp not null
)
{%- endmacro %}
