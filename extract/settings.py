"""Which API the extractor reads, resolved like every setting (core.config).

`sources.moovitamix.api_url` (environment `SOURCES__MOOVITAMIX__API_URL`, or `.dlt/config.toml`),
or its short form `MOOVITAMIX_API_URL`; unset, the entry points serve the embedded dev API. The
bearer token is a secret: `SOURCES__MOOVITAMIX__API_TOKEN` or the git-ignored `.dlt/secrets.toml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.config import SECRET, SENSITIVE, resolve, sensitive_config

SECTION = "sources.moovitamix"


@dataclass(frozen=True)
class SourceSettings:
    # None: no service configured, use the dev API. It may carry credentials: never logged.
    api_url: str | None = field(default=None, repr=False, metadata=SENSITIVE)
    api_token: str | None = field(default=None, repr=False, metadata=SECRET)

    @classmethod
    def resolve(cls) -> SourceSettings:
        short_form = sensitive_config("moovitamix_api_url")
        return resolve(cls, SECTION, **({"api_url": short_form} if short_form else {}))
