{#
    Every macro in this folder holds SQL that differs between engines. Each one dispatches
    (`adapter.dispatch(name, 'moovitamix')`) to a `duckdb__` and a `spark__` implementation; the `default__`
    raises, so moving the project to a third engine fails at compile time, naming
    the macro to port, instead of running DuckDB syntax there.
#}
{% macro engine_not_ported(macro_name) -%}
    {{ exceptions.raise_compiler_error(
        "macro " ~ macro_name ~ " has no implementation for adapter '" ~ adapter.type()
        ~ "'; add " ~ adapter.type() ~ "__" ~ macro_name ~ " in dbt_project/macros/engine/"
    ) }}
{%- endmacro %}
