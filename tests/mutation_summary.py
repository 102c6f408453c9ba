"""`make mutation`'s summary: mutmut's verdicts per module, and every survivor, checked against
the explanations in docs/mutation.md.

`python -m tests.mutation_summary` after `mutmut run`. Exits 1 when a protected module (extract,
nightly, core, recommender) kills less than TARGET of its mutants, or a survivor there is not
explained. `python -m tests.mutation_summary recommender. core.lock` checks only the modules
whose names start with one of those prefixes (after a run of only their mutants); a mutant not
yet run counts as not killed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
EXPLANATIONS = REPO_ROOT / "docs" / "mutation.md"
TARGET = 0.90
PROTECTED = ("extract.", "nightly.", "core.", "recommender.")
DETECTED = {"killed", "timeout"}


def verdicts() -> dict[str, str]:
    """Mutant name -> mutmut's verdict (killed, survived, timeout, no tests, ...)."""
    output = subprocess.run(
        [Path(sys.executable).with_name("mutmut"), "results", "--all", "true"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(re.findall(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$", output, flags=re.MULTILINE))


def module_of(mutant: str) -> str:
    return mutant.split(".x")[0] if ".x" in mutant else mutant.rsplit(".", 1)[0]


def main(prefixes: tuple[str, ...] = ()) -> int:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    results = {
        mutant: verdict
        for mutant, verdict in verdicts().items()
        if not prefixes or mutant.startswith(prefixes)
    }
    for mutant, verdict in results.items():
        by_module[module_of(mutant)][verdict] += 1
    explained = EXPLANATIONS.read_text() if EXPLANATIONS.exists() else ""
    print(f"{'module':28} {'mutants':>7} {'killed':>6} {'survived':>8} {'timeout':>7} "
          f"{'no tests':>8} {'not run':>7} {'killed %':>8}")  # fmt: skip
    failing = []
    for module in sorted(by_module):
        counts = by_module[module]
        total = sum(counts.values())
        share = sum(counts[v] for v in DETECTED) / total
        print(
            f"{module:28} {total:7} {counts['killed']:6} {counts['survived']:8} "
            f"{counts['timeout']:7} {counts['no tests']:8} {counts['not checked']:7} {share:8.0%}"
        )
        if module.startswith(PROTECTED) and share < TARGET:
            failing.append(f"{module} kills {share:.0%} of its mutants (target {TARGET:.0%})")
    # a mutant not run yet needs no explanation: it counts as not killed in its module's share
    survivors = sorted(m for m, v in results.items() if v not in DETECTED | {"not checked"})
    print(f"\nnot killed ({len(survivors)}); `mutmut show <name>` prints the diff:")
    for mutant in survivors:
        # the whole name: `..._mutmut_1` is not explained by `..._mutmut_13`
        named = re.search(re.escape(mutant) + r"(?!\d)", explained) is not None
        note = "explained" if named else "NOT EXPLAINED in docs/mutation.md"
        print(f"  {mutant}: {results[mutant]} ({note})")
        if mutant.startswith(PROTECTED) and not named:
            failing.append(f"{mutant} {results[mutant]}, not explained")
    for problem in failing:
        print(f"FAIL {problem}")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main(tuple(sys.argv[1:])))
