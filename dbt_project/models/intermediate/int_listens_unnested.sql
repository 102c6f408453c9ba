{#
    Every user's latest listen list as one row per listen: (user_id, listen_position), where the
    position is the 1-based index in the list as the API sent it. Repeats are kept (a track
    played twice is two listens); null track ids are dropped (their positions stay unused, and
    the null_track_ids_dropped warning on the staging model counts them). The incremental
    models apply the same macro to the changed lists only.
#}

with

stg_moovitamix__listen_history_latest as (
    select * from {{ ref('stg_moovitamix__listen_history_latest') }}
),

listens as (
    {{ unnest_listen_lists('stg_moovitamix__listen_history_latest') }}
),

final as (
    select * from listens
)

select * from final
