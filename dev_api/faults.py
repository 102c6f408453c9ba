"""Fault injection for the dev API: a plan of failures the server applies to matching requests.

Off by default. Each fault targets an endpoint (or "*") and a page (or None: random pages, each
request hit with the plan's `rate`), and affects `times` requests before the page answers
normally again (-1: forever), so a retrying client can be tested for recovery.
"""

import random
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from math import ceil
from typing import Any, Literal, get_args

from dev_api.world import ENDPOINTS, KEY_FIELD, Endpoint, Record

FaultKind = Literal[
    "status",  # arg = HTTP status code, body {"detail": ...}
    "rate_limit",  # 429 with Retry-After: arg seconds
    "slow",  # sleep arg seconds, then answer normally
    "timeout",  # sleep arg seconds (longer than the client waits), then close without answering
    "drop",  # close the connection without a response
    "malformed",  # 200 with a truncated JSON body
    "missing_field",  # one record loses the key named by arg
    "wrong_type",  # one record's field (arg; default: id, or items) gets a wrong-typed value
    "null_user_id",  # one listen_history record's user_id is null
    "null_items",  # one listen_history record's items is null
    "null_item",  # one element of a listen_history record's items is null
    "duplicate_id",  # the page repeats a record of the previous page in place of one of its own
    "total_change",  # total is off by arg, and pages follows it
    "empty_page",  # items is [] although the page is before the end
    "drop_record",  # the page's last record is missing, total and pages unchanged
    "null_pages",  # pages is null (the contract allows it: clients compute ceil(total / size))
    "bad_total",  # total breaks the contract: arg = null, negative or text (BAD_TOTALS)
    "missing_items_key",  # the envelope has no items key
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)
TRANSPORT_KINDS = frozenset({"status", "rate_limit", "slow", "timeout", "drop", "malformed"})
LISTEN_HISTORY_KINDS = frozenset({"null_user_id", "null_items", "null_item"})
DEFAULT_ARGS: dict[str, float | str] = {
    "status": 500,
    "rate_limit": 1,
    "slow": 1.0,
    "timeout": 30.0,
    "total_change": 1,
    "missing_field": "updated_at",
    "bad_total": "text",
}
# what a bad_total fault puts in `total`: each is not a non-negative integer
BAD_TOTALS: dict[str, Any] = {"null": None, "negative": -1, "text": "250"}
FOREVER = -1

_SPEC = re.compile(
    r"(?P<endpoint>[^:]+):(?P<page>\*|\d+):(?P<kind>[a-z_]+)(?::(?P<arg>[^:]+?))?(?:x(?P<times>-?\d+))?"
)


@dataclass(frozen=True)
class Fault:
    """One failure: which requests it hits (endpoint, page), what it does (kind, arg), how often."""

    endpoint: Endpoint | Literal["*"]
    page: int | None
    kind: FaultKind
    times: int = 1
    arg: float | str | None = None

    def __post_init__(self) -> None:
        if self.endpoint != "*" and self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}")
        if self.kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {self.kind!r}, expected one of {', '.join(FAULT_KINDS)}"
            )
        if self.kind in LISTEN_HISTORY_KINDS and self.endpoint not in ("*", "listen_history"):
            raise ValueError(f"{self.kind} applies to listen_history only")
        if self.kind == "status":
            HTTPStatus(int(self.value))  # raises ValueError for a code http.server cannot send
        if self.kind == "bad_total" and self.value not in BAD_TOTALS:
            raise ValueError(f"bad_total takes one of {', '.join(BAD_TOTALS)}, not {self.arg!r}")
        if self.page is not None and self.page < 1:
            raise ValueError("page must be >= 1, or None for random pages")

    @classmethod
    def parse(cls, spec: str) -> "Fault":
        """Parse the CLI form ENDPOINT:PAGE:KIND[:ARG][xTIMES], e.g. users:3:status:503x2.

        Without xTIMES a fault on a fixed page hits once, one on random pages ('*') forever.
        """
        match = _SPEC.fullmatch(spec)
        if match is None:
            raise ValueError(f"bad fault spec {spec!r}, expected ENDPOINT:PAGE:KIND[:ARG][xTIMES]")
        page = None if match["page"] == "*" else int(match["page"])
        times = int(match["times"]) if match["times"] else (1 if page else FOREVER)
        arg: float | str | None = match["arg"]
        if arg is not None and isinstance(DEFAULT_ARGS.get(match["kind"]), (int, float)):
            arg = float(arg)
        return cls(match["endpoint"], page, match["kind"], times, arg)  # type: ignore[arg-type]

    @property
    def value(self) -> Any:
        """The argument, or the kind's default."""
        return DEFAULT_ARGS.get(self.kind) if self.arg is None else self.arg

    def matches(self, endpoint: Endpoint, page: int) -> bool:
        return (
            self.endpoint in ("*", endpoint)
            and self.page in (None, page)
            and (self.kind not in LISTEN_HISTORY_KINDS or endpoint == "listen_history")
        )


class FaultPlan:
    """The faults a server applies; thread-safe, with its own seeded RNG for random-page faults."""

    def __init__(self, faults: Iterable[Fault] = (), rate: float = 0.1, seed: int = 0) -> None:
        self.faults = list(faults)
        self.rate = rate
        self._remaining = [fault.times for fault in self.faults]
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    @classmethod
    def from_specs(cls, specs: Iterable[str], rate: float = 0.1, seed: int = 0) -> "FaultPlan":
        return cls([Fault.parse(spec) for spec in specs], rate, seed)

    def take(self, endpoint: Endpoint, page: int) -> Fault | None:
        """The fault to apply to this request, if any, counting it against the fault's `times`."""
        with self._lock:
            for number, fault in enumerate(self.faults):
                if self._remaining[number] == 0 or not fault.matches(endpoint, page):
                    continue
                if fault.page is None and self._rng.random() >= self.rate:
                    continue
                if self._remaining[number] > 0:
                    self._remaining[number] -= 1
                return fault
        return None


def corrupt(
    fault: Fault,
    envelope: dict[str, Any],
    endpoint: Endpoint,
    previous_page: Callable[[], list[Record]],
) -> dict[str, Any]:
    """Apply a data fault (a kind outside TRANSPORT_KINDS) to a page envelope.

    Record faults damage the page's first record.
    """
    items: list[Record] = envelope["items"]
    if fault.kind == "empty_page":
        items.clear()
    elif fault.kind == "drop_record":
        del items[-1:]
    elif fault.kind == "null_pages":
        envelope["pages"] = None
    elif fault.kind == "bad_total":
        envelope["total"] = BAD_TOTALS[str(fault.value)]
    elif fault.kind == "missing_items_key":
        del envelope["items"]
    elif fault.kind == "total_change":
        envelope["total"] += int(fault.value)
        envelope["pages"] = ceil(envelope["total"] / envelope["size"])
    elif fault.kind == "duplicate_id" and items:
        # As if a record had been inserted before this page: its first slot repeats the
        # previous page's last record (on page 1, this page's last one).
        previous = previous_page()
        items[0] = previous[-1] if previous else items[-1]
    elif items:
        record = items[0]
        if fault.kind == "missing_field":
            record.pop(str(fault.value), None)
        elif fault.kind == "wrong_type":
            field = str(
                fault.arg or ("items" if endpoint == "listen_history" else KEY_FIELD[endpoint])
            )
            record[field] = 0 if isinstance(record.get(field), str) else "abc"
        elif fault.kind == "null_user_id":
            record["user_id"] = None
        elif fault.kind == "null_items":
            record["items"] = None
        elif fault.kind == "null_item":
            record["items"][0] = None
    return envelope
