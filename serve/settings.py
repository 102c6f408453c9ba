"""The serving API's settings, resolved like every setting (core.config, section `serve`).

`SERVE__HOST` / `SERVE__PORT` (or `[serve]` in `.dlt/config.toml`) choose the address; the
optional bearer token is a secret: `SERVE__TOKEN` or `token` under `[serve]` in the git-ignored
`.dlt/secrets.toml`, never logged. The file served is the analysts' file the nightly job
publishes, and it is stale after the nightly job's own `stale_after_hours`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from core.config import SECRET, resolve
from core.paths import Paths
from nightly.settings import NightlySettings

SECTION = "serve"


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8001
    # with a token, every API request must send `Authorization: Bearer <token>`
    token: str | None = field(default=None, repr=False, metadata=SECRET)
    # the analysts' file (core.paths) and the nightly job's staleness window: not settings of
    # their own, so that the service judges the file exactly as the job does
    analytics_path: Path = Path("data/analytics.duckdb")
    stale_after_hours: float = 26.0
    # how often the published file's path is checked for a new night
    check_seconds: float = 0.5

    @classmethod
    def from_config(cls) -> ServeSettings:
        """Defaults, overridden by dlt's providers (environment, .dlt/*.toml)."""
        return resolve(
            cls,
            SECTION,
            analytics_path=Paths.resolve().analytics,
            stale_after_hours=NightlySettings.from_config().stale_after_hours,
        )

    def check_bind(self) -> None:
        """Refuse a non-loopback address without a token: the API would be open to the network."""
        if self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"serve.host {self.host!r} is not a loopback address and no serve.token is set: "
                "set SERVE__TOKEN (or token under [serve] in .dlt/secrets.toml), or bind 127.0.0.1"
            )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
