"""HTTP server of the dev API (standard library + orjson), plus helpers that run it for tests.

It answers like the real FastAPI service: same paths, page envelopes, 422 bodies, 307 on "/",
404 {"detail": "Not Found"}, HTTP/1.1 keep-alive. It binds to loopback only.
"""

import ipaddress
import logging
import os
import re
import select
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from math import ceil
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from dev_api.faults import TRANSPORT_KINDS, Fault, FaultPlan, corrupt
from dev_api.world import ENDPOINTS, Endpoint, World

OPENAPI_DOCUMENT = (Path(__file__).parent / "contract" / "openapi.json").read_bytes()
LISTENING_BANNER = "MooVitamix dev API listening on "
START_TIMEOUT_SECONDS = 60  # a child that prints no banner by then is killed
log = logging.getLogger("moovitamix.dev_api")


class DevApiNotStarted(RuntimeError):
    """`start_api_process`: the child exited or stayed silent instead of serving."""


DOCS_PAGE = (
    b"<!doctype html><title>MooVitamix dev API</title><h1>MooVitamix dev API</h1>"
    b"<p>Local fake of the MooVitamix API. OpenAPI document: "
    b'<a href="/openapi.json">/openapi.json</a></p>'
)
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
# (name, default, minimum, maximum) of the query parameters, in FastAPI's validation order
_PAGING_PARAMETERS = (("page", 1, 1, None), ("size", 100, 1, 100))


def parse_paging(query: str) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """Validate page and size like FastAPI: (values, []) or ({...}, FastAPI `detail` errors)."""
    given = parse_qs(query, keep_blank_values=True)
    values: dict[str, int] = {}
    errors: list[dict[str, Any]] = []
    for name, default, minimum, maximum in _PAGING_PARAMETERS:
        if name not in given:
            values[name] = default
            continue
        raw = given[name][-1]
        location = ["query", name]
        if not _INTEGER.fullmatch(raw):
            message = "Input should be a valid integer, unable to parse string as an integer"
            errors.append({"type": "int_parsing", "loc": location, "msg": message, "input": raw})
        elif int(raw) < minimum:
            message = f"Input should be greater than or equal to {minimum}"
            errors.append(
                {
                    "type": "greater_than_equal",
                    "loc": location,
                    "msg": message,
                    "input": raw,
                    "ctx": {"ge": minimum},
                }
            )
        elif maximum is not None and int(raw) > maximum:
            message = f"Input should be less than or equal to {maximum}"
            errors.append(
                {
                    "type": "less_than_equal",
                    "loc": location,
                    "msg": message,
                    "input": raw,
                    "ctx": {"le": maximum},
                }
            )
        else:
            values[name] = int(raw)
    return values, errors


class DevApiServer(ThreadingHTTPServer):
    """The dev API on loopback: serves `world` on `world.day`, applies `faults`, counts requests."""

    daemon_threads = True
    # The default listen backlog of 5 makes concurrent clients wait for SYN retries.
    request_queue_size = 128

    def __init__(
        self,
        world: World,
        faults: FaultPlan | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        log_requests: bool = False,
        cache_pages: bool = False,
    ) -> None:
        if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
            raise ValueError(f"the dev API binds to loopback only, not {host!r}")
        super().__init__((host, port), _Handler)
        self.world = world
        self.faults = faults if faults is not None else FaultPlan()
        self.log_requests = log_requests
        # Benchmarks only: rendered pages kept in memory (which then grows with the data set), so
        # the API answers at wire speed and what gets measured is the client's own cost.
        self.page_cache: dict[tuple[str, int, int, int], bytes] | None = {} if cache_pages else None
        # Set on stop() to wake handlers sleeping for slow/timeout faults.
        self.stopping = threading.Event()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._requests_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def set_day(self, day: int) -> None:
        """Serve another simulated day from the next request on."""
        self.world.day = day

    def request_count(self, endpoint: Endpoint, page: int | None = None) -> int:
        """Valid requests for an endpoint's page (or all its pages), faulty answers included."""
        with self._requests_lock:
            return sum(
                n
                for (name, number), n in self._requests.items()
                if name == endpoint and page in (None, number)
            )

    def count_request(self, endpoint: Endpoint, page: int) -> None:
        with self._requests_lock:
            self._requests[endpoint, page] += 1

    def start(self) -> "DevApiServer":
        """Serve from a daemon thread."""
        # A short poll interval keeps stop() fast: shutdown() waits for the loop's next poll.
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="dev-api", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    server_version = "MooVitamix-dev-api"
    disable_nagle_algorithm = True
    timeout = 120  # close idle keep-alive connections
    server: DevApiServer

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        endpoint = url.path.removeprefix("/")
        if url.path == "/":
            self._send(HTTPStatus.TEMPORARY_REDIRECT, b"", headers={"location": "/docs"})
        elif url.path == "/openapi.json":
            self._send(HTTPStatus.OK, OPENAPI_DOCUMENT)
        elif url.path == "/docs":
            self._send(HTTPStatus.OK, DOCS_PAGE, content_type="text/html; charset=utf-8")
        elif endpoint in ENDPOINTS:
            self._serve_page(endpoint, url.query)  # type: ignore[arg-type]
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"detail": "Not Found"})

    def _serve_page(self, endpoint: Endpoint, query: str) -> None:
        values, errors = parse_paging(query)
        if errors:
            self._send_json(HTTPStatus.UNPROCESSABLE_ENTITY, {"detail": errors})
            return
        page, size = values["page"], values["size"]
        self.server.count_request(endpoint, page)
        fault = self.server.faults.take(endpoint, page)
        if fault is not None and self._answered_by_transport_fault(fault):
            return
        world, day = self.server.world, self.server.world.day
        cache, cache_key = self.server.page_cache, (endpoint, page, size, day)
        if fault is None and cache is not None and cache_key in cache:
            self._send(HTTPStatus.OK, cache[cache_key])
            return
        total = world.total(endpoint, day)
        envelope = {
            "items": world.page(endpoint, page, size, day),
            "total": total,
            "page": page,
            "size": size,
            "pages": ceil(total / size),
        }
        if fault is not None and fault.kind not in TRANSPORT_KINDS:
            envelope = corrupt(
                fault,
                envelope,
                endpoint,
                lambda: world.page(endpoint, page - 1, size, day) if page > 1 else [],
            )
        body = orjson.dumps(envelope)
        if fault is None and cache is not None:
            cache[cache_key] = body
        if fault is not None and fault.kind == "malformed":
            body = body[: len(body) // 2]
        self._send(HTTPStatus.OK, body)

    def _answered_by_transport_fault(self, fault: Fault) -> bool:
        """Apply a transport fault; True when the request needs no further answer."""
        if fault.kind == "slow":
            self.server.stopping.wait(float(fault.value))
        elif fault.kind in ("timeout", "drop"):
            if fault.kind == "timeout":
                self.server.stopping.wait(float(fault.value))
            self.close_connection = True
            return True
        elif fault.kind == "status":
            status = HTTPStatus(int(fault.value))
            self._send_json(status, {"detail": status.phrase})
            return True
        elif fault.kind == "rate_limit":
            seconds = ceil(float(fault.value))
            self._send_json(
                HTTPStatus.TOO_MANY_REQUESTS,
                {"detail": "Too Many Requests"},
                headers={"retry-after": str(seconds)},
            )
            return True
        return False

    def _send_json(
        self, status: HTTPStatus, payload: Any, headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, orjson.dumps(payload), headers=headers)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        if body:
            self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)


@contextmanager
def running_api(
    world: World | None = None, faults: FaultPlan | None = None, **world_kwargs: int
) -> Iterator[DevApiServer]:
    """Run the dev API on a free loopback port in this process, for tests.

    Yields the server: .url, .world, .faults, .request_count(), .set_day(). Pass a World, or
    World(...) keyword arguments.
    """
    if world is not None and world_kwargs:
        raise TypeError("pass either a world or World keyword arguments, not both")
    server = DevApiServer(world if world is not None else World(**world_kwargs), faults).start()
    try:
        yield server
    finally:
        server.stop()


def start_api_process(
    faults: Sequence[str] = (),
    fault_rate: float | None = None,
    cache_pages: bool = False,
    **world_kwargs: int,
) -> tuple["subprocess.Popen[str]", str]:
    """Start `python -m dev_api` on a free port in a child process; returns (process, url).

    `faults` are CLI fault specs (see Fault.parse). The caller stops the process:
    terminate() then wait(); if the caller dies first (even by SIGKILL), the child stops itself.
    """
    arguments = [sys.executable, "-m", "dev_api", "--port", "0"]
    arguments += ["--exit-with-parent", str(os.getpid())]
    for name, value in world_kwargs.items():
        arguments += [f"--{name}", str(value)]
    for spec in faults:
        arguments += ["--fault", spec]
    if cache_pages:
        arguments.append("--cache-pages")
    if fault_rate is not None:
        arguments += ["--fault-rate", str(fault_rate)]
    process = subprocess.Popen(
        arguments, cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT_SECONDS)
    banner = process.stdout.readline() if ready else ""
    if not banner.startswith(LISTENING_BANNER):
        process.kill()
        process.wait()
        raise DevApiNotStarted(
            f"dev API did not start within {START_TIMEOUT_SECONDS} s "
            f"(exit code {process.returncode}, first line {banner!r})"
        )
    return process, banner.removeprefix(LISTENING_BANNER).strip()


@contextmanager
def serve_next_day(day_file: Path) -> Iterator[str]:
    """Serve the dev API's next simulated day in a child process, for one night's extraction.

    The day counter lives in `day_file` (day 0 first), so a fresh clone's nights show night after
    night of change; it advances only when the block ends without an error.
    """
    day = int(day_file.read_text()) if day_file.exists() else 0
    process, url = start_api_process(day=day)
    log.info("no API configured: serving the dev API's day %d at %s", day, url)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
    day_file.parent.mkdir(parents=True, exist_ok=True)
    day_file.write_text(f"{day + 1}\n")
