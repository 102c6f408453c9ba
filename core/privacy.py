"""The privacy settings every layer applies (section `privacy`, e.g. PRIVACY__RETENTION_DAYS).

Who may read what the pipeline writes, how long personal data is kept, and whether gender may
reach the analysts' file. What each setting does is carried out in core.paths (file modes),
nightly/publish.py (the analysts' file), nightly/privacy.py (erasure) and dim_users (gender, a
dbt var that core.dbt passes). The README's privacy section says it for people.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import SettingsError, resolve

SECTION = "privacy"


@dataclass(frozen=True)
class PrivacySettings:
    # personal columns of users the service deleted are erased from raw history this many days
    # after the deletion was loaded (every version; ids and listening facts stay)
    retention_days: float = 30.0
    # the analysts' file: its permission bits (octal text) and an optional Unix group that may
    # read it (the data folder then becomes group-traversable, 0710, and nothing else opens up)
    analytics_file_mode: str = "0440"
    analytics_group: str | None = None
    # gender reaches the analysts' file (marts.dim_users.gender) only when this is on
    publish_gender: bool = False

    def __post_init__(self) -> None:
        if int(self.analytics_file_mode, 8) & 0o337:
            raise SettingsError(
                f"privacy.analytics_file_mode is {self.analytics_file_mode}: the analysts' file "
                "may be readable by its owner and group only, never written or read by others"
            )
        if self.retention_days < 0:
            raise SettingsError(f"privacy.retention_days is {self.retention_days}: must be >= 0")

    @property
    def analytics_mode(self) -> int:
        return int(self.analytics_file_mode, 8)

    @classmethod
    def from_config(cls) -> PrivacySettings:
        return resolve(cls, SECTION)
