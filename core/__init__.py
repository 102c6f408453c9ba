"""The small core every layer imports and that imports none of them.

- `config`: one settings mechanism (dlt's providers: environment, `.dlt/config.toml`,
  `.dlt/secrets.toml`) that fills each layer's settings dataclass;
- `paths`: where everything lives, resolved once from the data folder;
- `lock`: one nightly run (or one writer) at a time;
- `warehouse`: schema names and DuckDB connections;
- `dbt`: the one way the project runs dbt, and dbt's results read back.
"""
