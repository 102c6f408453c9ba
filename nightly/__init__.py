"""The nightly job behind `make elt`: extract, load, dbt build, checks, publish, run record."""
