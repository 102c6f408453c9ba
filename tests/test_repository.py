"""The repository as a whole: it stands alone, and its top-level packages import in one direction.

- A user's clone holds only the repository, so no tracked file may point above it (a relative
  path that leaves it or names nothing in it, an absolute path into the folder that holds the
  checkout, `parents[N]` past the root).
- Layers import the small core and the layers below them, never the other way round: `core`
  imports no project package; `extract` and `recommender` never import `nightly`; `recommender`
  never imports `extract`; only entry points start the dev API.
"""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

import networkx

from tests.support import REPO_ROOT

# Which project packages each top-level package may import (tests and benchmarks: any).
ALLOWED_IMPORTS = {
    "core": set(),
    "dev_api": set(),
    "extract": {"core", "dev_api"},
    "recommender": {"core"},
    "nightly": {"core", "dev_api", "extract", "recommender"},
    "serve": {"core", "nightly"},
    "benchmarks": {"core", "dev_api", "extract", "nightly", "recommender", "serve"},
    "orchestration": {"core", "nightly", "recommender"},
}
# The modules that decide whether to start the dev API (entry points and the nightly runner).
DEV_API_STARTERS = {"extract/__main__.py", "nightly/steps.py"}
RELATIVE_PATH = re.compile(r"(?:\.\./)+[\w./-]*")
PARENTS_INDEX = re.compile(r"parents\[(\d+)\]")


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [REPO_ROOT / name for name in listed.split("\0") if name]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError):
        return None


# A folder beside the checkout, spelled so that this file does not name it as a path itself.
BESIDE = ".." + "/beside-the-checkout/x"


def lands_in_repository(reference: str, folder: Path) -> bool:
    """Whether `reference` (e.g. ../extract/source.py) read from `folder` names something that
    exists inside the repository (not above it, and not a folder only a sibling checkout has)."""
    target = (folder / reference).resolve()
    return target.is_relative_to(REPO_ROOT) and target.exists()


def test_no_tracked_file_points_outside_the_repository() -> None:
    files = tracked_files()
    assert len(files) > 50, "git ls-files listed too few files to be this repository"
    outside = str(REPO_ROOT.parent)
    offenders = []
    for path in files:
        text = text_of(path)
        if text is None:
            continue
        name = path.relative_to(REPO_ROOT)
        offenders += [
            f"{name}: {reference}"
            for reference in RELATIVE_PATH.findall(text)
            if not lands_in_repository(reference, path.parent)
            and not lands_in_repository(reference, REPO_ROOT)
        ]
        if outside != "/" and f"{outside}/" in text:
            offenders.append(f"{name}: an absolute path under {outside}")
        depth = len(name.parts) - 1  # Path(__file__).parents[depth] is the repository root
        offenders += [
            f"{name}: parents[{index}] is above the repository"
            for index in map(int, PARENTS_INDEX.findall(text))
            if path.suffix == ".py" and index > depth
        ]
    assert not offenders, "\n".join(offenders)


def test_the_reference_check_sees_an_escape() -> None:
    """The check itself: a folder beside the checkout is refused from the root and from a
    subfolder (where it would land on nothing inside), a sibling folder's file is fine."""
    assert not lands_in_repository(BESIDE, REPO_ROOT)
    assert not lands_in_repository(BESIDE, REPO_ROOT / "tests")
    assert lands_in_repository("../extract/source.py", REPO_ROOT / "nightly")
    assert RELATIVE_PATH.findall(f"see {BESIDE} for more") == [BESIDE]


def imports_of(path: Path) -> set[str]:
    """The top-level project packages a module imports (anywhere in it, functions included)."""
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & set(ALLOWED_IMPORTS)


def package_graph() -> tuple[networkx.DiGraph, dict[str, set[str]]]:
    graph = networkx.DiGraph()
    by_module: dict[str, set[str]] = {}
    for package in ALLOWED_IMPORTS:
        graph.add_node(package)
        for module in sorted((REPO_ROOT / package).rglob("*.py")):
            imported = imports_of(module) - {package}
            by_module[str(module.relative_to(REPO_ROOT))] = imported
            graph.add_edges_from((package, other) for other in imported)
    return graph, by_module


def test_every_top_level_package_is_listed() -> None:
    packages = {
        path.parent.name
        for path in REPO_ROOT.glob("*/__init__.py")
        if path.parent.name not in {"tests"}
    }
    assert packages == set(ALLOWED_IMPORTS), "add the new package to ALLOWED_IMPORTS"


def test_no_import_cycle_between_top_level_packages() -> None:
    graph, _ = package_graph()
    assert graph.number_of_edges() > 5
    assert list(networkx.simple_cycles(graph)) == []


def test_layers_import_only_what_they_may() -> None:
    _, by_module = package_graph()
    forbidden = [
        f"{module} imports {other}"
        for module, imported in by_module.items()
        for other in imported
        if other not in ALLOWED_IMPORTS[module.split("/")[0]]
    ]
    assert not forbidden, "\n".join(forbidden)


def test_only_entry_points_start_the_dev_api() -> None:
    _, by_module = package_graph()
    starters = {
        module
        for module, imported in by_module.items()
        if "dev_api" in imported and not module.startswith(("dev_api/", "benchmarks/"))
    }
    assert starters == DEV_API_STARTERS


def test_the_cycle_check_sees_a_cycle() -> None:
    graph = networkx.DiGraph([("extract", "nightly"), ("nightly", "extract")])
    assert list(networkx.simple_cycles(graph)) != []
