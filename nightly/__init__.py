"""The nightly job behind `make elt`: extract, then `dbt build`, then a summary."""
