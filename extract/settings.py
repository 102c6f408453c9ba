"""Which API the extractor reads, resolved like every setting (core.config).

`sources.moovitamix.api_url` (environment `SOURCES__MOOVITAMIX__API_URL`, or `.dlt/config.toml`),
or its short form `MOOVITAMIX_API_URL`; unset, the entry points serve the embedded dev API. The
bearer token is a secret: `SOURCES__MOOVITAMIX__API_TOKEN` or the git-ignored `.dlt/secrets.toml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dlt

from core.config import SECRET, resolve

SECTION = "sources.moovitamix"


@dataclass(frozen=True)
class SourceSettings:
    api_url: str | None = None  # None: no service configured, use the dev API
    api_token: str | None = field(default=None, repr=False, metadata=SECRET)

    @classmethod
    def resolve(cls) -> SourceSettings:
        short_form = dlt.config.get("moovitamix_api_url", str)
        return resolve(cls, SECTION, **({"api_url": short_form} if short_form else {}))
