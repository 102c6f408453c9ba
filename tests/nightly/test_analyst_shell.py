"""The analysts' file opens in the tools analysts have: the DuckDB shell from PyPI (`duckdb-cli`,
a 1.x release pinned in requirements.lock) and the Python client read it alike, and `make shell`
answers a query typed at its prompt, in a real terminal (tmux), while a night publishes a new
file."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.paths import Paths
from nightly.ledger import Ledger
from nightly.privacy import ErasureLog
from nightly.publish import STORAGE_VERSION, publish
from nightly.shell import SCHEMAS, USEFUL_TABLES
from tests.nightly.support import job_environment, past_run
from tests.support import REPO_ROOT, query

pytestmark = pytest.mark.dbt

SHELL = Path(sys.executable).with_name("duckdb")
PROMPT = re.compile(r"^[\w.]+ D( |$)")  # "analytics.marts D ": the catalog.schema, then D
EMPTY_PROMPT = re.compile(r"^[\w.]+ D$")
COUNT_BOX = re.compile(r"^│\s*([\d,]+)\s*│$")
EXIT = re.compile(r"^\[exit (\d+)\]$")
MART_QUERY = (
    "select user_id, count(*) as listens, count(distinct track_id) as tracks "
    "from marts.fct_listens group by user_id order by user_id"
)


class Terminal:
    """A command in a real terminal (tmux, on a server of its own whose socket is in `folder`),
    typed at as a person would."""

    def __init__(self, command: list[str], env: dict[str, str], folder: Path) -> None:
        self.tmux = ["tmux", "-S", str(folder / f"tmux-{time.monotonic_ns()}")]
        shell_line = f'{shlex.join(command)}; echo "[exit $?]"; sleep 600'
        subprocess.run(
            [*self.tmux, "new-session", "-d", "-x", "160", "-y", "50", shell_line],
            cwd=REPO_ROOT,
            env=env,
            check=True,
        )

    def lines(self) -> list[str]:
        """The screen and its scrollback, one string per line, trailing blanks dropped."""
        screen = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-J", "-S", "-"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return [line.rstrip() for line in screen.rstrip().splitlines()]

    def wait_for(self, done: Callable[[list[str]], bool], what: str) -> list[str]:
        deadline = time.monotonic() + 30
        while not done(lines := self.lines()):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} on the screen:\n" + "\n".join(lines))
            time.sleep(0.1)
        return lines

    def prompt(self, prompts_before: int = 0) -> list[str]:
        """Wait for a fresh, empty prompt; return the lines since the previous prompt."""
        lines = self.wait_for(
            lambda lines: len(prompts(lines)) > prompts_before and EMPTY_PROMPT.match(lines[-1]),
            "prompt",
        )
        previous = prompts(lines)[-2] if len(prompts(lines)) > 1 else -1
        return lines[previous + 1 : -1]

    def ask(self, sql: str) -> list[str]:
        """Type `sql` and Enter at the prompt; the answer's lines."""
        before = len(prompts(self.lines()))
        # tmux reads an argument ending in ";" as its own command separator, unless escaped
        keys = f"{sql[:-1]}\\;" if sql.endswith(";") else sql
        subprocess.run([*self.tmux, "send-keys", "-l", keys], check=True)
        subprocess.run([*self.tmux, "send-keys", "Enter"], check=True)
        return self.prompt(before)

    def quit(self) -> int:
        """`.quit`; the shell's exit code."""
        subprocess.run([*self.tmux, "send-keys", "-l", ".quit"], check=True)
        subprocess.run([*self.tmux, "send-keys", "Enter"], check=True)
        lines = self.wait_for(lambda lines: EXIT.match(lines[-1]), "exit code")
        return int(EXIT.match(lines[-1])[1])

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """End the terminal's tmux server, and the shell with it if a test failed first."""
        subprocess.run([*self.tmux, "kill-server"], check=False, capture_output=True)


def prompts(lines: list[str]) -> list[int]:
    return [number for number, line in enumerate(lines) if PROMPT.match(line)]


def make_shell(data_dir: Path) -> Terminal:
    # -o: a test never re-creates the venv, even if pyproject.toml is newer
    command = ["make", "--no-print-directory", "-s", "-o", ".venv/bin/.installed", "shell"]
    return Terminal(command, job_environment(data_dir, None), data_dir.parent)


def counted(answer: list[str]) -> int:
    [number] = [match[1] for line in answer if (match := COUNT_BOX.match(line))]
    return int(number.replace(",", ""))


def test_the_pinned_1x_shell_and_the_python_client_read_the_published_file_alike(
    first_night: Path,
) -> None:
    version = subprocess.run(
        [str(SHELL), "-version"], capture_output=True, text=True, check=True
    ).stdout
    assert version.startswith("v1."), f"the pinned DuckDB shell is {version}, not a 1.x release"
    published = first_night / "analytics.duckdb"
    shell = subprocess.run(
        [str(SHELL), "-readonly", "-csv", "-noheader", str(published), "-c", MART_QUERY],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0, shell.stderr
    by_shell = [tuple(map(int, line.split(","))) for line in shell.stdout.split()]
    by_python = query(published, MART_QUERY)
    assert by_shell == by_python and len(by_python) > 100
    [(tags,)] = query(
        published, "select tags from duckdb_databases() where database_name = current_database()"
    )
    assert tags["storage_version"] == f"{STORAGE_VERSION}+"


@pytest.mark.skipif(
    shutil.which("tmux") is None, reason="no tmux to type into: install it (.ci/run does)"
)
def test_make_shell_answers_at_its_prompt_and_a_night_publishing_meanwhile_never_waits(
    data_dir: Path,
) -> None:
    published = data_dir / "analytics.duckdb"
    [(listens,)] = query(published, "select count(*) from marts.fct_listens")
    with make_shell(data_dir) as terminal:
        welcome = "\n".join(terminal.prompt())
        assert f"Schemas: {', '.join(SCHEMAS)}" in welcome and ".quit" in welcome
        for table, grain in USEFUL_TABLES:
            assert re.search(rf"^  {table.split('.')[1]} +{re.escape(grain)}$", welcome, re.M)
            assert query(published, f"select count(*) from {table}")[0][0] > 0
        assert counted(terminal.ask("select count(*) from fct_listens;")) == listens
        assert counted(terminal.ask("select count(*) from pipeline_runs;")) == 1

        # A night publishes while the shell holds the file open: it is not blocked, and the
        # open session keeps answering from the snapshot it opened.
        records = [*Ledger(data_dir / "runs").records(), past_run(datetime.now(UTC))]
        started = time.monotonic()
        erasures = ErasureLog(Paths.under(data_dir)).table()
        publish(data_dir / "moovitamix.duckdb", published, records, erasures)
        assert time.monotonic() - started < 10
        assert counted(terminal.ask("select count(*) from pipeline_runs;")) == 1
        assert terminal.quit() == 0

    with make_shell(data_dir) as reopened:
        reopened.prompt()
        assert counted(reopened.ask("select count(*) from pipeline_runs;")) == 2
        assert counted(reopened.ask("select count(*) from fct_listens;")) == listens
        assert reopened.quit() == 0


def test_make_shell_says_when_no_file_has_been_published(tmp_path: Path) -> None:
    completed = subprocess.run(
        ["make", "--no-print-directory", "-s", "-o", ".venv/bin/.installed", "shell"],
        cwd=REPO_ROOT,
        env=job_environment(tmp_path, None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode != 0
    assert f"No analysts' file at {tmp_path / 'analytics.duckdb'} yet" in completed.stderr
