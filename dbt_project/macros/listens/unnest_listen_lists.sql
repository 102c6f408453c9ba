{#
    The listens of a set of listen lists (rows shaped like stg_moovitamix__listen_history,
    named by the CTE `lists`): one row per non-null element, with its 1-based position in the
    list as sent (nulls leave a gap). Shared by the models that unnest lists, so that the
    incremental ones can unnest only the lists that changed: a filter written after the unnest
    would still unnest every list.
#}
{% macro unnest_listen_lists(lists) -%}
    select
        {{ lists }}.user_id,
        cast(unnested_elements.listen_position as integer) as listen_position,
        unnested_elements.track_id,
        {{ lists }}.is_deleted_upstream as is_user_deleted_upstream,
        {{ lists }}.load_id as list_load_id,
        {{ lists }}.loaded_at as list_loaded_at
    from {{ lists }}
    {{ cross_join_unnest_with_position(lists ~ '.track_ids', 'track_id', 'listen_position') }}
    where unnested_elements.track_id is not null
{%- endmacro %}
