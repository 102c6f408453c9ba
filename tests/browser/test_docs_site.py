"""The dbt docs site as people see it: built with `dbt docs generate`, served by `dbt docs serve`
on loopback and opened in Chromium. The overview shows the project overview, the fct_listens
page every column description of the manifest, and the lineage graph the path from the raw
sources to user_features."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx
import pytest
from playwright.sync_api import Page

from core.dbt import run_dbt
from core.paths import Paths
from tests.browser.conftest import screenshot
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.dbt]

PROJECT = "moovitamix"
LINEAGE_OF = f"model.{PROJECT}.user_features"
CYTOSCAPE = "document.querySelector('#cy') && document.querySelector('#cy')._cyreg"
DRAWN_GRAPH = """() => {
    const cy = document.querySelector('#cy')._cyreg.cy;
    const box = document.querySelector('#cy').getBoundingClientRect();
    const shown = n => n.visible() && n.renderedPosition().x > 0 && n.renderedPosition().y > 0
        && n.renderedPosition().x < box.width && n.renderedPosition().y < box.height;
    return {
        nodes: cy.nodes().filter(shown).map(n => n.id()),
        edges: cy.edges().filter(e => e.visible()).map(e => [e.source().id(), e.target().id()]),
    };
}"""


@dataclass(frozen=True)
class DocsSite:
    url: str
    manifest: dict[str, Any]


@pytest.fixture(scope="module")
def docs_site(three_nights: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsSite]:
    target = tmp_path_factory.mktemp("docs") / "target"
    generated = run_dbt(
        Paths.under(three_nights), "docs", "generate", target_dir=target, capture=True
    )
    assert generated.returncode == 0, generated.output[-3000:]
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dbt")), "docs", "serve", "--no-browser",
            "--host", "127.0.0.1", "--port", str(port), "--target-path", str(target),
        ],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "DBT_PROFILES_DIR": str(REPO_ROOT),
            "MOOVITAMIX_DUCKDB_PATH": str(three_nights / "moovitamix.duckdb"),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_served(url, server)
        yield DocsSite(url, json.loads((target / "manifest.json").read_text()))
    finally:
        server.terminate()
        server.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_served(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, f"dbt docs serve exited with {server.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"dbt docs serve did not answer on {url}")


def plain(markdown: str) -> str:
    """Text as the page renders `markdown`: no backticks or emphasis marks, links as their
    text, whitespace collapsed."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"`|\*\*|(?<!\w)[*_](?=\w)|(?<=\w)[*_](?!\w)", "", text)
    return " ".join(text.split())


def test_the_overview_page_shows_the_project_overview(docs_site: DocsSite, page: Page) -> None:
    overview = docs_site.manifest["docs"][f"doc.{PROJECT}.__overview__"]["block_contents"]
    title = overview.strip().splitlines()[0].lstrip("# ").strip()
    page.goto(f"{docs_site.url}#!/overview")
    heading = page.get_by_role("heading", name=title)
    heading.wait_for()
    assert heading.is_visible()
    paragraph = next(p for p in overview.split("\n\n")[1:] if p.strip() and p[0].isalpha())
    assert plain(paragraph) in " ".join(page.inner_text("body").split())


def test_the_fct_listens_page_shows_every_column_description(
    docs_site: DocsSite, page: Page
) -> None:
    columns = docs_site.manifest["nodes"][f"model.{PROJECT}.fct_listens"]["columns"]
    assert columns
    page.goto(f"{docs_site.url}#!/model/model.{PROJECT}.fct_listens")
    rows = page.locator("tr.column-row")
    rows.first.wait_for()
    assert [" ".join(rows.nth(i).inner_text().split()[:1]) for i in range(rows.count())] == list(
        columns
    )
    for index in range(rows.count()):
        rows.nth(index).click()  # expanded: the whole description, not a cut-off line
    table = page.locator("table", has=rows.first)
    shown = " ".join(table.inner_text().split())
    missing = [
        name
        for name, column in columns.items()
        if not column["description"].strip() or plain(column["description"]) not in shown
    ]
    assert not missing, f"descriptions not shown on the page: {missing}"
    for name, column in columns.items():
        shown_here = page.get_by_text(plain(column["description"])[:60]).filter(visible=True)
        assert shown_here.count() >= 1, f"{name}: its description is not visible"


def test_the_lineage_graph_draws_the_path_from_the_raw_sources_to_user_features(
    docs_site: DocsSite, page: Page
) -> None:
    manifest = docs_site.manifest
    lineage = networkx.DiGraph(
        (parent, child) for child, parents in manifest["parent_map"].items() for parent in parents
    )
    raw_sources = {
        unique_id
        for unique_id, source in manifest["sources"].items()
        if source["schema"] == "raw" and unique_id in networkx.ancestors(lineage, LINEAGE_OF)
    }
    assert len(raw_sources) >= 3  # users, tracks, listen_history at least

    page.goto(f"{docs_site.url}#!/model/{LINEAGE_OF}")
    page.locator("tr.column-row").first.wait_for()
    page.click("a[ng-click='onLauncherClick()']")  # the lineage button
    page.click("a[ng-click='showExpanded()']")  # full screen
    page.wait_for_function(f"{CYTOSCAPE} && {CYTOSCAPE}.cy.nodes().length > 1")
    drawn = settled_graph(page)
    page.mouse.move(700, 300)  # off the buttons: no tooltip in the screenshot
    screenshot(page, "lineage-user-features")

    shown = networkx.DiGraph(drawn["edges"])
    assert LINEAGE_OF in drawn["nodes"]
    for source in raw_sources:
        assert source in drawn["nodes"], f"{source} is not drawn"
        path = networkx.shortest_path(shown, source, LINEAGE_OF)
        assert set(path) <= set(drawn["nodes"]), path
        assert networkx.is_simple_path(lineage, path), path  # every drawn edge is real


def settled_graph(page: Page) -> dict[str, Any]:
    """The drawn graph once its layout stopped moving."""
    previous = None
    for _ in range(50):
        positions = page.evaluate(
            "() => document.querySelector('#cy')._cyreg.cy.nodes().map(n => n.renderedPosition())"
        )
        if positions == previous:
            return page.evaluate(DRAWN_GRAPH)
        previous = positions
        page.wait_for_timeout(200)
    raise AssertionError("the lineage graph never stopped moving")
