"""How Airflow retries the one step where a retry is safe (section `orchestration`).

`ORCHESTRATION__EXTRACT_RETRIES` / `ORCHESTRATION__EXTRACT_RETRY_DELAY_SECONDS` in the
environment, or `[orchestration]` in `.dlt/config.toml`; read when Airflow parses the DAG file.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import resolve

SECTION = "orchestration"


@dataclass(frozen=True)
class OrchestrationSettings:
    # extract_load is retried: a failed read leaves raw unchanged, a failed merge is completed
    # by the next attempt's recovery. No other step is retried (a second dbt build or publish
    # would hide the failure it hit).
    extract_retries: int = 2
    extract_retry_delay_seconds: float = 600.0

    @classmethod
    def from_config(cls) -> OrchestrationSettings:
        return resolve(cls, SECTION)
