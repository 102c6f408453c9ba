"""The three MooVitamix endpoints as the raw layer stores them, and the record contract check.

One `Endpoint` per API path: its natural key and the Arrow schema of its raw table (the API's
fields, typed). `Endpoint.to_arrow` turns one page of records into an Arrow table with a content
hash per row, and sets aside, with the reason, each record that breaks the contract.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

ROW_HASH = "_row_hash"
"""Content hash of the API record; dlt's scd2 merge uses it as the row version."""

_TIMESTAMP = pa.timestamp("us")  # the API sends ISO-8601 without time zone; staging makes it UTC


@dataclass(frozen=True)
class Endpoint:
    """One paginated API path and the raw table it lands in (same name)."""

    name: str
    key: str
    schema: pa.Schema

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(self.schema.names)

    @property
    def field_set(self) -> frozenset[str]:
        return frozenset(self.schema.names)

    def check(self, record: Any) -> str | None:
        """Why `record` breaks the contract, or None when it is sound."""
        if not isinstance(record, dict):
            return f"record is {type(record).__name__}, not an object"
        missing = [name for name in self.fields if name not in record]
        if missing:
            return f"missing field(s): {', '.join(missing)}"
        for field in self.schema:
            value = record[field.name]
            problem = _type_problem(field, value, is_key=field.name == self.key)
            if problem:
                return f"field {field.name!r} {problem}: {_short(value)}"
        return None

    def split(self, records: list[Any]) -> tuple[pa.Table, list[tuple[Any, str]]]:
        """One page's records as (sound records in the raw schema, [(bad record, reason)]).

        Pages are checked by Arrow in one pass; only a page with something unusual in it (a bad
        record, a field outside the contract) is checked record by record.
        """
        table = self._vectorised(records)
        if table is not None:
            return table, []
        sound, bad = [], []
        for record in records:
            reason = self.check(record)
            if reason is None:
                sound.append(record)
            else:
                bad.append((record, reason))
        return self._row_by_row(sound), bad

    def _vectorised(self, records: list[Any]) -> pa.Table | None:
        """The records as a raw table when every one of them is sound, else None."""
        # from_pylist takes its columns from the first record: check every record's keys first
        fields = self.field_set
        if not records or not all(type(r) is dict and r.keys() == fields for r in records):
            return None
        try:
            table = pa.Table.from_pylist(records)  # inferred types: a stray float or bool shows
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        columns = []
        for field in self.schema:
            column = table.column(field.name)
            wire_type = pa.string() if field.type == _TIMESTAMP else field.type
            if column.type != wire_type and not (field.nullable and pa.types.is_null(column.type)):
                return None
            if column.null_count and (not field.nullable or field.name == self.key):
                return None
            try:
                columns.append(column.cast(field.type))
            except pa.ArrowInvalid:  # a date-time Arrow cannot parse: let `check` judge it
                return None
        # Every record has exactly the contract's keys here, so it is hashed as it is.
        hashes = [_digest(record) for record in records]
        return pa.Table.from_arrays(
            [*columns, pa.array(hashes, pa.string())], schema=RAW_SCHEMAS[self.name]
        )

    def _row_by_row(self, records: list[dict[str, Any]]) -> pa.Table:
        """Records that passed `check`, converted value by value (the slow, lenient path)."""
        columns: dict[str, list[Any]] = {name: [] for name in self.fields}
        for record in records:
            for field in self.schema:
                value = record[field.name]
                if field.type == _TIMESTAMP:
                    value = datetime.fromisoformat(value)
                columns[field.name].append(value)
        columns[ROW_HASH] = [row_hash(record, self.fields) for record in records]
        return pa.Table.from_pydict(columns, schema=RAW_SCHEMAS[self.name])


def row_hash(record: dict[str, Any], fields: tuple[str, ...]) -> str:
    """Stable hash of a record's API fields, so an unchanged record keeps its version."""
    return _digest({name: record[name] for name in fields})


def _digest(record: dict[str, Any]) -> str:
    canonical = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _type_problem(field: pa.Field, value: Any, is_key: bool) -> str | None:
    if value is None:
        return "is null" if is_key or not field.nullable else None
    if pa.types.is_integer(field.type):
        return None if _is_int(value) else "is not an integer"
    if pa.types.is_string(field.type):
        return None if isinstance(value, str) else "is not a string"
    if field.type == _TIMESTAMP:
        if not isinstance(value, str):
            return "is not a date-time string"
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return "is not an ISO-8601 date-time"
        return None
    if pa.types.is_list(field.type):
        if not isinstance(value, list):
            return "is not a list"
        return None if all(item is None or _is_int(item) for item in value) else "has a non-integer"
    raise TypeError(f"no contract check for Arrow type {field.type}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema(*fields: tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype, nullable=nullable) for name, dtype, nullable in fields])


USERS = Endpoint(
    name="users",
    key="id",
    schema=_schema(
        ("id", pa.int64(), False),
        ("first_name", pa.string(), False),
        ("last_name", pa.string(), False),
        ("email", pa.string(), False),
        ("gender", pa.string(), False),
        ("favorite_genres", pa.string(), False),
        ("created_at", _TIMESTAMP, False),
        ("updated_at", _TIMESTAMP, False),
    ),
)

# What identifies or describes a person in raw.users: erased on request or after retention
# (nightly/privacy.py); the ids and every listening fact stay.
USER_PERSONAL_COLUMNS = ("first_name", "last_name", "email", "gender")

TRACKS = Endpoint(
    name="tracks",
    key="id",
    schema=_schema(
        ("id", pa.int64(), False),
        ("name", pa.string(), False),
        ("artist", pa.string(), False),
        ("songwriters", pa.string(), False),
        ("duration", pa.string(), False),
        ("genres", pa.string(), False),
        ("album", pa.string(), False),
        ("created_at", _TIMESTAMP, False),
        ("updated_at", _TIMESTAMP, False),
    ),
)

# The contract allows a null user_id, but a listen history without its user cannot be keyed:
# `check` quarantines it. A null `items` list (or null ids inside it) is valid and kept.
LISTEN_HISTORY = Endpoint(
    name="listen_history",
    key="user_id",
    schema=_schema(
        ("user_id", pa.int64(), True),
        ("items", pa.list_(pa.int64()), True),
        ("created_at", _TIMESTAMP, False),
        ("updated_at", _TIMESTAMP, False),
    ),
)

ENDPOINTS: tuple[Endpoint, ...] = (USERS, TRACKS, LISTEN_HISTORY)

# What each raw table receives: the API's fields plus the row hash.
RAW_SCHEMAS = {
    endpoint.name: endpoint.schema.append(pa.field(ROW_HASH, pa.string(), nullable=False))
    for endpoint in ENDPOINTS
}
