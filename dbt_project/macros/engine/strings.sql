{#
    A "MM:SS" duration as integer seconds. Minutes are one or two digits, seconds 00-59, and
    the total must be positive; anything else ("75:99", "3:5", "", "abc", "00:00") is null.
#}
{% macro parse_duration_seconds(column) -%}
    {{ return(adapter.dispatch('parse_duration_seconds', 'moovitamix')(column)) }}
{%- endmacro %}

{% macro default__parse_duration_seconds(column) -%}
    {{ engine_not_ported('parse_duration_seconds') }}
{%- endmacro %}

{% macro duckdb__parse_duration_seconds(column) -%}
    case
        when regexp_full_match({{ column }}, '[0-9]{1,2}:[0-5][0-9]')
            and {{ column }} not in ('0:00', '00:00')
            then cast(split_part({{ column }}, ':', 1) as integer) * 60
                + cast(split_part({{ column }}, ':', 2) as integer)
    end
{%- endmacro %}


{#
    A free-text genre string as a normalised list: split on commas, each part trimmed and title
    cased (lower case, then upper case at the start and after any non-letter: "r&b" -> "R&B",
    "hip hop" -> "Hip Hop"), empty parts dropped, repeats dropped keeping the first. A null
    string gives null; an empty one an empty list.
    "rock, indie" -> ['Rock', 'Indie']; "Rock,rock" -> ['Rock'].
#}
{% macro normalise_genre_list(column) -%}
    {{ return(adapter.dispatch('normalise_genre_list', 'moovitamix')(column)) }}
{%- endmacro %}

{% macro default__normalise_genre_list(column) -%}
    {{ engine_not_ported('normalise_genre_list') }}
{%- endmacro %}

{% macro duckdb__normalise_genre_list(column) -%}
    {%- set trimmed_parts -%}
        list_filter(
            list_transform(string_split({{ column }}, ','), lambda part: trim(part)),
            lambda part: part <> ''
        )
    {%- endset -%}
    {%- set title_cased -%}
        list_transform({{ trimmed_parts }}, lambda genre: {{ moovitamix.duckdb__title_case('genre') }})
    {%- endset -%}
    {#- keep an element only where it first occurs: the list without repeats, order kept -#}
    list_filter({{ title_cased }}, lambda candidate, candidate_index: list_position({{ title_cased }}, candidate) = candidate_index)
{%- endmacro %}


{# Title case of one string: lower case, upper case at the start and after any non-letter. #}
{% macro duckdb__title_case(column) -%}
    array_to_string(
        list_transform(
            string_split(lower({{ column }}), ''),
            lambda letter, letter_index: case
                when letter_index = 1
                    or not regexp_matches(string_split(lower({{ column }}), '')[letter_index - 1], '\p{L}')
                    then upper(letter)
                else letter
            end
        ),
        ''
    )
{%- endmacro %}

{#- Java's `$` also matches before a final line break: the extracted match must be the whole string -#}
{% macro spark__parse_duration_seconds(column) -%}
    case
        when regexp_extract({{ column }}, '^[0-9]{1,2}:[0-5][0-9]$', 0) = {{ column }}
            and {{ column }} not in ('0:00', '00:00')
            then cast(split_part({{ column }}, ':', 1) as integer) * 60
                + cast(split_part({{ column }}, ':', 2) as integer)
    end
{%- endmacro %}

{#- array_distinct keeps each element's first occurrence, in order -#}
{% macro spark__normalise_genre_list(column) -%}
    array_distinct(transform(
        filter(transform(split({{ column }}, ','), part -> trim(part)), part -> part <> ''),
        genre -> {{ moovitamix.spark__title_case('genre') }}
    ))
{%- endmacro %}

{% macro spark__title_case(column) -%}
    array_join(
        transform(
            split(lower({{ column }}), ''),
            (letter, letter_index) -> case
                when letter_index = 0
                    or not (split(lower({{ column }}), '')[letter_index - 1] rlike '\\p{L}')
                    then upper(letter)
                else letter
            end
        ),
        ''
    )
{%- endmacro %}
