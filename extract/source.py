"""The MooVitamix dlt source: three paginated endpoints, read in full every night.

The API has no server-side filter, so every run reads every page; dlt's `scd2` merge then writes
only what changed (versions keyed by a content hash) and retires records that vanished. Pages are
fetched by a small thread pool through dlt's retrying request client and yielded as Arrow tables
in page order, so memory holds a bounded window of pages, never a whole endpoint.

Because `scd2` retires whatever a load does not contain, a short read would delete data: each
endpoint's `EndpointReport` records what was announced and what was read, and `pipeline.py`
refuses to load unless they agree.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import dlt
import orjson
import pyarrow as pa
from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.specs import RuntimeConfiguration
from dlt.sources.helpers.requests import Client, Response
from dlt.sources.helpers.requests.retry import DEFAULT_RETRY_EXCEPTIONS, DEFAULT_RETRY_STATUS

from extract.endpoints import ENDPOINTS, ROW_HASH, Endpoint

log = logging.getLogger("moovitamix.extract")

QUARANTINE_TABLE = "quarantined_records"
PAGE_SIZE = 100  # the API's maximum
FETCH_WORKERS = 2  # measured best on 2 cores against a local API; raise for a distant one
BATCH_ROWS = 10_000  # rows per Arrow item handed to dlt


class ExtractionError(RuntimeError):
    """An endpoint could not be read completely; nothing of this run may be loaded."""


class SourceChangedError(ExtractionError):
    """The API's answer moved while it was read (total, pages, or a key seen twice); re-read."""


@dataclass
class EndpointReport:
    """What one endpoint announced and what the run read of it: the truncation guard's input."""

    endpoint: str
    total: int | None = None
    pages: int | None = None
    pages_read: int = 0
    rows_read: int = 0
    quarantined: int = 0
    keys: set[int] = field(default_factory=set, repr=False)
    unknown_fields: set[str] = field(default_factory=set)
    error_responses: int = 0
    rate_limited: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_attempt(self, response: Response | None, exception: BaseException | None) -> bool:
        """dlt's retry predicate: dlt's own conditions (429, 5xx, timeouts, dropped connections),
        counting every failed attempt on the way.

        dlt checks its built-in conditions before a custom predicate and stops at the first that
        matches, so a counting-only predicate never saw a retried attempt; `_client` turns the
        built-in conditions off and this predicate applies the same ones.
        """
        if exception is not None or (response is not None and response.status_code >= 400):
            with self._lock:
                self.error_responses += 1
                if response is not None and response.status_code == 429:
                    self.rate_limited += 1
        if exception is not None:
            return isinstance(exception, DEFAULT_RETRY_EXCEPTIONS)
        return response is not None and response.status_code in DEFAULT_RETRY_STATUS

    def check_complete(self) -> None:
        """Fail unless every announced record was read exactly once (loaded or quarantined)."""
        if self.total is None:
            raise ExtractionError(f"{self.endpoint}: no page was read")
        if self.total == 0:  # scd2 would retire every record: never a real night
            raise ExtractionError(
                f"{self.endpoint}: the API announced 0 records; refusing to merge"
            )
        if self.rows_read != self.total:
            raise ExtractionError(
                f"{self.endpoint}: the API announced {self.total} records but {self.rows_read} "
                f"were read over {self.pages_read} pages; refusing to merge a truncated endpoint"
            )


@dataclass(frozen=True)
class _Page:
    number: int
    total: int
    pages: int
    table: pa.Table
    quarantined: list[dict[str, Any]]
    unknown_fields: frozenset[str]


@dlt.source(name="moovitamix", max_table_nesting=0)
def moovitamix_source(
    api_url: str = dlt.config.value,
    api_token: str | None = dlt.secrets.value,
    reports: dict[str, EndpointReport] | None = None,
    page_size: int = PAGE_SIZE,
    workers: int = FETCH_WORKERS,
) -> Any:
    """One scd2 resource per endpoint; `reports` (filled while extracting) feeds the guard."""
    reports = {} if reports is None else reports
    runtime = resolve_configuration(RuntimeConfiguration())
    for endpoint in ENDPOINTS:
        report = reports.setdefault(endpoint.name, EndpointReport(endpoint.name))
        client = _client(runtime, api_token, report)
        yield dlt.resource(
            _read_endpoint(client, api_url.rstrip("/"), endpoint, report, page_size, workers),
            name=endpoint.name,
            write_disposition={
                "disposition": "merge",
                "strategy": "scd2",
                "row_version_column_name": ROW_HASH,
            },
        )


def _client(runtime: RuntimeConfiguration, token: str | None, report: EndpointReport) -> Client:
    """dlt's request client: backoff on 429/5xx/timeouts/dropped connections, Retry-After."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return Client(
        request_timeout=runtime.request_timeout,
        request_max_attempts=runtime.request_max_attempts,
        request_backoff_factor=runtime.request_backoff_factor,
        request_max_retry_delay=runtime.request_max_retry_delay,
        status_codes=(),  # the same conditions, applied (and counted) by count_attempt
        exceptions=(),
        retry_condition=report.count_attempt,
        session_attrs={"headers": headers},
    )


def _read_endpoint(
    client: Client,
    api_url: str,
    endpoint: Endpoint,
    report: EndpointReport,
    page_size: int,
    workers: int,
) -> Iterator[Any]:
    """Yield every record of `endpoint` as Arrow batches, checking each page on the way."""
    started = time.monotonic()
    batch: list[pa.Table] = []
    for page in _pages_in_order(client, api_url, endpoint, page_size, workers):
        _record_page(page, endpoint, report, started)
        if page.quarantined:
            yield dlt.mark.with_hints(
                pa.Table.from_pylist(page.quarantined),
                dlt.mark.make_hints(table_name=QUARANTINE_TABLE, write_disposition="append"),
                create_table_variant=True,
            )
        batch.append(page.table)
        # dlt's per-item cost is a few ms: one item per page would cost more than the page.
        if sum(table.num_rows for table in batch) >= BATCH_ROWS:
            yield pa.concat_tables(batch)
            batch = []
    if batch:
        yield pa.concat_tables(batch)
    log.info(
        "%s: %d pages, %d rows read in %.1f s",
        endpoint.name,
        report.pages_read,
        report.rows_read,
        time.monotonic() - started,
    )


def _pages_in_order(
    client: Client, api_url: str, endpoint: Endpoint, page_size: int, workers: int
) -> Iterator[_Page]:
    """Page 1, then pages 2..pages fetched `workers` at a time, in page order.

    The page count comes from the `pages` field of page 1; at most 2 x `workers` pages are in
    flight, so memory holds a bounded window whatever the endpoint's size.
    """
    first = _fetch_page(client, api_url, endpoint, 1, page_size)
    yield first
    window: deque[Future[_Page]] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"fetch-{endpoint.name}")
    try:
        for number in range(2, first.pages + 1):
            window.append(pool.submit(_fetch_page, client, api_url, endpoint, number, page_size))
            if len(window) >= 2 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _record_page(page: _Page, endpoint: Endpoint, report: EndpointReport, started: float) -> None:
    """Check one page against what page 1 announced and count it in the endpoint's report."""
    if report.total is None:
        report.total, report.pages = page.total, page.pages
    where = f"{endpoint.name} page {page.number}/{report.pages}"
    if (page.total, page.pages) != (report.total, report.pages):
        raise SourceChangedError(
            f"{where}: total/pages changed mid-run from {report.total}/{report.pages} "
            f"to {page.total}/{page.pages}"
        )
    rows = page.table.num_rows + len(page.quarantined)
    if rows == 0 and page.number <= page.pages:
        position = "the last page" if page.number == page.pages else "a page before the last one"
        raise ExtractionError(f"{where}: {position} is empty; the read is truncated")
    keys = page.table.column(endpoint.key).to_pylist()
    before = len(report.keys)
    report.keys.update(keys)
    if len(report.keys) - before != len(keys):
        raise SourceChangedError(f"{where}: a {endpoint.key} already read appears again")
    report.pages_read += 1
    report.rows_read += rows
    report.quarantined += len(page.quarantined)
    report.unknown_fields |= page.unknown_fields
    if page.number % max(1, report.pages // 10) == 0:
        log.info(
            "%s: page %d/%d, %d rows, %.1f s",
            endpoint.name,
            page.number,
            report.pages,
            report.rows_read,
            time.monotonic() - started,
        )


def _redacted(error: Exception) -> str:
    """The error's text without credentials a URL may carry (user:password@host)."""
    return re.sub(r"//[^/@\s]+@", "//***@", str(error))


def _fetch_page(
    client: Client, api_url: str, endpoint: Endpoint, number: int, page_size: int
) -> _Page:
    """GET one page (dlt retries transient failures), parse it and split sound from bad records."""
    where = f"{endpoint.name} page {number}"
    try:
        response = client.get(
            f"{api_url}/{endpoint.name}", params={"page": number, "size": page_size}
        )
    except Exception as exc:  # requests' errors after dlt's retries ran out
        raise ExtractionError(f"{where}: request failed after retries: {_redacted(exc)}") from exc
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise ExtractionError(f"{where}: response is not valid JSON ({exc})") from exc
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ExtractionError(f"{where}: response has no 'items' list")
    total = body.get("total")
    if not isinstance(total, int) or total < 0:
        raise ExtractionError(f"{where}: response has no valid 'total' ({total!r})")
    pages = body.get("pages")
    if pages is None:  # the contract allows a null `pages`; it is ceil(total / size)
        pages = -(-total // page_size)
    table, bad = endpoint.split(body["items"])
    quarantined = [
        {
            "endpoint": endpoint.name,
            "page": number,
            "reason": reason,
            "record": orjson.dumps(record).decode(),
        }
        for record, reason in bad
    ]
    unknown = {
        name for record in body["items"] if isinstance(record, dict) for name in record
    } - set(endpoint.fields)
    return _Page(number, total, pages, table, quarantined, frozenset(unknown))
