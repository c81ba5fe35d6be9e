"""How well the suite guards the domain code, measured by mutmut rather than by hand.

Not part of the suite, and not in CI: it is long (every mutant runs the tests mutmut
saw calling its function). It runs mutmut the same way every time, one module after
another, and writes what each gave to tests/mutation-summary.md:

    .venv/bin/pip install -e '.[test,mutation]'
    .venv/bin/python -m tests.mutation [models/rules.py ...]   # default: every module below
    .venv/bin/python -m tests.mutation --unchecked [...]       # resume: only mutants not yet run
    .venv/bin/python -m tests.mutation --survivors [...]       # again, only last run's survivors

mutmut copies the tree into mutants/ (git-ignored) and runs pytest there, on SQLite and
a private Redis (the tests' defaults; DATABASE_URL and REDIS_URL are dropped, so a
mutant never runs against a shared database). One mutant at a time and at nice 19: the
tests share one SQLite file and one Redis, and the machine's cores are shared too.
Which modules are mutated, and the pytest arguments, are in pyproject.toml's
[tool.mutmut]. A survivor is either killed by a new test or listed, with the reason it
changes nothing, in tests/equivalent_mutants.md; the summary counts those apart.
Concurrency mutants mutmut cannot express (it never makes two transactions overlap)
stay in tests/mutants.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUMMARY = ROOT / "tests" / "mutation-summary.md"
EQUIVALENT = ROOT / "tests" / "equivalent_mutants.md"
MUTMUT = Path(sys.executable).with_name("mutmut")

# Smallest and most valuable first: a partial run still measures what matters most.
MODULES = [
    "models/rules.py", "models/idempotency.py", "models/csvfile.py", "graph/execution/limits.py",
    "graph/core/context.py", "models/journal.py", "models/revert_start.py", "models/purge.py",
    "models/revert_pairs.py", "models/leases.py", "models/engine.py", "models/tenancy.py",
    "graph/api/users.py", "jobs/transfer.py",
]
_RESULT = re.compile(r"^\s+(?P<name>\S+): (?P<status>.+)$")
_ROW = re.compile(r"^\| `(?P<module>[^`]+)` \|")


def _dotted(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return env


def run(module: str, only: str | None) -> None:
    """Run the mutants of `module`: every one (again, even those an earlier run judged), or
    `only` those an earlier run left in that state ("not checked": resume; "survived": again,
    after new tests; a killed mutant stays killed, since tests are only added)."""
    names = [f"{_dotted(module)}.*"]
    if only is not None:
        prefix = _dotted(module) + "."
        names = [name for name, status in results().items() if name.startswith(prefix) and status == only]
        if not names:
            return
    subprocess.run(["nice", "-n", "19", str(MUTMUT), "run", "--max-children", "1", *names],
                   cwd=ROOT, env=_environment(), check=False)


def results() -> dict[str, str]:
    """Every mutant mutmut has judged, by name: killed, survived, timeout, ..."""
    out = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=ROOT, env=_environment(),
                         capture_output=True, text=True, check=True).stdout
    return {m["name"]: m["status"] for line in out.splitlines() if (m := _RESULT.match(line))}


def equivalent() -> set[str]:
    """Survivors judged equivalent: the first `code` of each list item in tests/equivalent_mutants.md."""
    return set(re.findall(r"^- `([^`]+)`", EQUIVALENT.read_text(), re.M)) if EQUIVALENT.exists() else set()


def row(module: str, judged: dict[str, str], same: set[str]) -> str:
    prefix = _dotted(module) + "."
    mine = {name: status for name, status in judged.items() if name.startswith(prefix)}
    counts = Counter(mine.values())
    listed = sum(1 for name, status in mine.items() if status == "survived" and name in same)
    guarded = counts["killed"] + counts["timeout"]
    judged = len(mine) - listed - counts["not checked"]
    score = f"{100 * guarded / judged:.0f} %" if judged > 0 else "-"
    return (f"| `{module}` | {len(mine)} | {counts['killed']} | {counts['survived'] - listed} | {listed} "
            f"| {counts['timeout']} | {counts['no tests']} | {counts['not checked']} | {score} |")


def write_summary(ran: list[str]) -> None:
    """Rows for the modules just run replace their old ones; the others are kept as they were."""
    judged, same = results(), equivalent()
    rows, notes = {}, ""
    if SUMMARY.exists():  # the table's rows, and any "## ..." sections after it (notes kept by hand)
        table, _, rest = SUMMARY.read_text().partition("\n## ")
        rows = {m["module"]: line for line in table.splitlines() if (m := _ROW.match(line))}
        notes = "\n## " + rest if rest else ""
    for module in ran:
        rows[module] = row(module, judged, same)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    SUMMARY.write_text(
        "# Mutation testing: the last run of each module\n\n"
        f"Written by `python -m tests.mutation` (mutmut, SQLite), last at {stamp} ({', '.join(ran)});\n"
        "each row is what its module's last run left.\n"
        "Killed = a test failed; survived = no test failed and the mutant is not in\n"
        "tests/equivalent_mutants.md; equivalent = survived but listed there with the reason it\n"
        "changes nothing; timeout = the tests ran past mutmut's limit (counted as killed);\n"
        "no tests = no test calls the function; not run = the run was stopped before it.\n"
        "Score = (killed + timeout) / (mutants - equivalent - not run).\n\n"
        "| module | mutants | killed | survived | equivalent | timeout | no tests | not run | score |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows[m] for m in MODULES if m in rows) + "\n" + notes
    )


def main(args: list[str]) -> int:
    only = {"--unchecked": "not checked", "--survivors": "survived"}
    chosen = [a for a in args if a not in only] or MODULES
    unknown = [m for m in chosen if m not in MODULES]
    if unknown:
        raise SystemExit(f"not a measured module (see MODULES and [tool.mutmut] only_mutate): {unknown}")
    state = next((only[a] for a in args if a in only), None)
    for module in chosen:
        run(module, state)
        write_summary([module])
        print(SUMMARY.read_text(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
