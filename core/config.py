"""One settings mechanism for every layer: a frozen dataclass filled from dlt's config providers.

A field `name` of a settings class resolved under `section` is read, in dlt's order, from the
environment variable `SECTION__NAME`, then `[section] name` in `.dlt/config.toml` (or, for a
field marked secret, `.dlt/secrets.toml`); a field found nowhere keeps its default. Secret
fields (`field(metadata=SECRET)`) are read through `dlt.secrets` and never printed (repr=False);
sensitive ones (`SENSITIVE`, e.g. a URL that may carry a password) through `dlt.config`, typed as
secrets so that dlt's run trace redacts them too.

Renamed settings stay readable: a class may name a legacy environment prefix (e.g. the
recommender's `RECOMMENDER_TOP_K` before it became `RECOMMENDER__TOP_K`); such a variable is
still honoured, with a DeprecationWarning naming its replacement.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import dlt
from dlt.common.typing import TSecretStrValue

log = logging.getLogger("moovitamix")

T = TypeVar("T")
# A secret: only from the environment or the git-ignored .dlt/secrets.toml, redacted everywhere.
SECRET = {"secret": True}
# Configuration that may hold a credential (a URL with a password): read from any provider,
# .dlt/config.toml included, but typed as a secret so dlt's traces redact it.
SENSITIVE = {"sensitive": True}


class SettingsError(ValueError):
    """A setting has a value the project cannot use; the message names the setting."""


def resolve(
    cls: type[T],
    section: str,
    legacy_env_prefix: str | None = None,
    defaults: dict[str, Any] | None = None,
    **given: Any,
) -> T:
    """An instance of the dataclass `cls`: `given` values, else configured ones, else `defaults`,
    else the class's own defaults."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for setting in dataclasses.fields(cls):
        if not setting.init:
            continue
        if setting.name in given:
            values[setting.name] = given[setting.name]
            continue
        key = f"{section}.{setting.name}"
        wanted = _plain_type(hints[setting.name])
        if setting.metadata.get("secret"):
            value = dlt.secrets.get(key)  # untyped: dlt's default secret hint, redacted in traces
        elif setting.metadata.get("sensitive"):
            value = sensitive_config(key)
        else:
            value = dlt.config.get(key, wanted)
        if value is None and legacy_env_prefix:
            value = _legacy(legacy_env_prefix, section, setting.name, wanted)
        if value is not None:
            values[setting.name] = _coerce(value, wanted, key)
            if hints[setting.name] is Path:
                values[setting.name] = Path(values[setting.name])
        elif defaults and setting.name in defaults:
            values[setting.name] = defaults[setting.name]
    return cls(**values)


def sensitive_config(key: str) -> str | None:
    """A configured value that may hold a credential, looked up with dlt's secret hint so that
    its run trace (trace.pickle) records `<secret>`, not the value. (`dlt.config.get` with a
    secret type fails to coerce the value in dlt 1.31, hence the accessor's lookup itself.)"""
    value, _ = dlt.config._get_value(key, TSecretStrValue)
    return None if value is None else str(value)


def _plain_type(hint: Any) -> type:
    """`int | None` -> int, `dict[str, Any]` -> dict: the type dlt coerces configured text to."""
    origin = get_origin(hint)
    if origin in (dict, list):
        return origin
    for candidate in (hint, *get_args(hint)):  # a plain type, or the types of a union
        if candidate in (bool, int, float, str, dict, list):
            return candidate
    return str


def _coerce(value: Any, wanted: type, key: str) -> Any:
    if isinstance(value, wanted) or wanted is str:
        return value
    try:
        if wanted in (dict, list):
            return json.loads(value) if isinstance(value, str) else wanted(value)
        if wanted is bool and isinstance(value, str):
            return value.strip().lower() in {"1", "true", "yes", "on"}
        return wanted(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {key}: {value!r} is not a {wanted.__name__}") from exc


def _legacy(prefix: str, section: str, name: str, wanted: type) -> Any:
    legacy = f"{prefix}{name.upper()}"
    if legacy not in os.environ:
        return None
    replacement = f"{section.upper()}__{name.upper()}"
    message = f"{legacy} is deprecated and will be removed: set {replacement} instead"
    warnings.warn(message, DeprecationWarning, stacklevel=3)
    log.warning("%s", message)
    return os.environ[legacy]
