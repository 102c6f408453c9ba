"""Shared fixtures for the dev API tests: the contract files and a small keep-alive HTTP client."""

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from dev_api import DevApiServer, running_api

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACT_DIR = REPO_ROOT / "dev_api" / "contract"


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpClient:
    """GETs over one keep-alive connection per base URL; never follows redirects."""

    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        url = urlsplit(base_url)
        self.connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)

    def get(self, path: str) -> Response:
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        return Response(response.status, response.headers, response.read())

    def get_json(self, path: str) -> Any:
        response = self.get(path)
        assert response.status == 200, (path, response.status, response.body)
        return response.json()

    def read_all(self, endpoint: str, size: int = 100) -> list[dict[str, Any]]:
        """Every item of an endpoint, page by page until the first empty page."""
        items: list[dict[str, Any]] = []
        page = 1
        while batch := self.get_json(f"/{endpoint}?page={page}&size={size}")["items"]:
            items += batch
            page += 1
        return items

    def close(self) -> None:
        self.connection.close()


@pytest.fixture(scope="session")
def contract() -> Path:
    return CONTRACT_DIR


@pytest.fixture(scope="session")
def openapi(contract: Path) -> dict[str, Any]:
    return json.loads((contract / "openapi.json").read_bytes())


@pytest.fixture(scope="session")
def sample(contract: Path) -> Any:
    """Load a file of the contract's samples/ by name."""
    return lambda name: json.loads((contract / "samples" / name).read_bytes())


@pytest.fixture(scope="module")
def default_api() -> Iterator[DevApiServer]:
    """The dev API with its default data set (1000 users, tracks and histories), kept on day 0."""
    with running_api() as api:
        yield api


@pytest.fixture
def client_for() -> Iterator[Any]:
    """Open HttpClients on base URLs; all are closed after the test."""
    clients: list[HttpClient] = []

    def open_client(base_url: str, timeout: float = 5.0) -> HttpClient:
        clients.append(HttpClient(base_url, timeout))
        return clients[-1]

    yield open_client
    for client in clients:
        client.close()


@pytest.fixture
def client(default_api: DevApiServer, client_for: Any) -> HttpClient:
    return client_for(default_api.url)
