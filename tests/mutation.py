"""How well the suite guards the domain code, measured by mutmut rather than by hand.

Not part of the suite, and not in CI: it is long (every mutant runs the tests mutmut
saw calling its function). It runs mutmut the same way every time and writes what it
gave, per module, to tests/mutation-summary.md:

    .venv/bin/pip install -e '.[test,mutation]'
    nice -n 19 .venv/bin/python -m tests.mutation [models/rules.py ...]   # default: every module below
    .venv/bin/python -m tests.mutation --survivors [...]   # judge the survivors again, after new tests
    .venv/bin/python -m tests.mutation --summary           # only write the summary from the verdicts
    .venv/bin/python -m tests.mutation --postgres postgres://127.0.0.1:5432/mutation   # POSTGRES_TWINS
    options: --children N (mutants side by side, default 2), --pid-file PATH (the run's process group)

A run resumes: it judges only the mutants that have no verdict yet. Verdicts are kept in
tests/mutation-cache/ (committed): mutmut's .meta files, one per module, and its map of
which tests call which function. A run restores them into mutants/ (git-ignored, rebuilt
from the sources each run), saves them back every two minutes, at its end and when it is
stopped (SIGTERM, SIGINT): a killed run keeps what it judged. mutmut keeps a verdict while
its function's code is unchanged (a hash per function): change a function and its
mutants are judged again. To judge everything again, delete tests/mutation-cache/.
Changing [tool.mutmut]'s pytest arguments makes mutmut judge everything again too.

mutmut copies the tree into mutants/ and runs pytest there, on SQLite and a private Redis
per pytest session (the tests' defaults; DATABASE_URL and REDIS_URL are dropped, so a
mutant never runs against a shared database), two mutants side by side by default. One
mutmut run covers every chosen module, module by module in the order of MODULES (within
one, mutmut's order: quickest first). A mutant whose tests ran while the run was paused
(SIGSTOP, then SIGCONT, to the process group) is not judged by that run (its tests' clocks
jumped: a wait ran out, a time limit passed) and the next pass runs it again.

mutmut maps a function to the tests it saw calling it in its own process, and maps only tests
it has not seen: a run maps again the tests of every file edited since the map was collected
(tests/mutation-cache/test-files.json holds each test file's hash as mapped). Two kinds of caller
it cannot see are named here: tests that reach a function only in a worker process they start
(WORKER_TESTS), and PostgreSQL-only functions (POSTGRES_TWINS), which a SQLite run leaves
unjudged and `--postgres` judges, one at a time on that database, with the tests of their
SQLite twin.

A survivor is either killed by a new test or listed, with the reason it changes nothing,
in tests/equivalent_mutants.md; the summary counts those apart. Concurrency mutants mutmut
cannot express (it never makes two transactions overlap) stay in tests/mutants.py.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
CACHE = ROOT / "tests" / "mutation-cache"
STATS = "mutmut-stats.json"
TEST_FILES = "test-files.json"  # each test file's hash when the map was last collected
SUMMARY = ROOT / "tests" / "mutation-summary.md"
EQUIVALENT = ROOT / "tests" / "equivalent_mutants.md"

# Smallest and most valuable first: a partial run still measures what matters most.
MODULES = [
    "models/rules.py", "models/idempotency.py", "models/csvfile.py", "graph/execution/limits.py",
    "graph/core/context.py", "models/journal.py", "models/revert_start.py", "models/purge.py",
    "models/revert_pairs.py", "models/leases.py", "models/engine.py", "models/tenancy.py",
    "graph/api/users.py", "jobs/transfer.py",
]
# Functions some tests reach only in a worker process they start (`udt worker`): those run the
# mutated copy in mutants/, but mutmut sees calls in its own process only. Their tests, by hand.
WORKER_TESTS = {
    "tests/test_fairness.py::test_a_single_transfer_and_another_tenants_bulk_run_while_a_bulk_runs":
        ["jobs.transfer.x__others_waiting", "jobs.transfer.x__offer"],
    "tests/test_fairness.py::test_a_lane_keeps_its_worker_slot_while_nobody_waits":
        ["jobs.transfer.x__others_waiting", "jobs.transfer.x__offer"],
    "tests/test_worker_recovery.py::test_sigterm_finishes_the_pair_in_flight_then_hands_the_lane_over_and_exits":
        ["jobs.transfer.x__offer"],
}
# Functions only PostgreSQL runs, judged by `--postgres URL` with the tests of their SQLite twin
# (a SQLite run leaves them unjudged rather than "no tests").
POSTGRES_TWINS = {
    "models.engine.x__apply_postgres": "models.engine.x__apply_sqlite",
    "models.engine.x__tally": "models.engine.x__apply_sqlite",
}
SAVE_SECONDS = 120
IDLE_PASSES = 3
PAUSE_SECONDS = 20  # a tick of the pause watch this late means the run was stopped meanwhile
# mutmut's exit codes (mutmut.stats.status_by_exit_code) as the summary counts them
KILLED, SURVIVED, NO_TESTS, TIMEOUTS = {1, 3, -9, -11}, {0}, {5, 33}, {24, -24, 36, 152, 255}
_ROW = re.compile(r"^\| `(?P<module>[^`]+)` \|")


def _function_of(mutant: str) -> str:
    return re.sub(r"__mutmut_\d+$", "", mutant)


def _dotted(module: str) -> str:
    return module.removesuffix(".py").replace("/", ".")


def _module_of(name: str) -> str | None:
    return next((m for m in MODULES if name.startswith(_dotted(m) + ".")), None)


# --- the verdicts: mutants/ (mutmut's) and tests/mutation-cache/ (committed) ---------------

def _metas(root: Path) -> dict[str, dict]:
    """Each module's .meta under `root`, by module path; one being written (unreadable) is left out."""
    found = {}
    for module in MODULES:
        with contextlib.suppress(OSError, ValueError):
            found[module] = json.loads((root / f"{module}.meta").read_text())
    return found


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    part.replace(path)


def verdicts(field: str = "exit_code_by_key") -> dict[str, int | None]:
    """Every mutant the cache knows, with mutmut's exit code (None: not judged yet), or `field`."""
    return {name: value for meta in _metas(CACHE).values() for name, value in meta[field].items()}


def restore() -> None:
    """mutants/ rebuilt from the sources, with the cached verdicts: mutmut mutates each module
    again and keeps a verdict where its function's hash is unchanged."""
    shutil.rmtree(MUTANTS, ignore_errors=True)
    for module, meta in _metas(CACHE).items():
        _write_json(MUTANTS / f"{module}.meta", meta)
    with contextlib.suppress(FileNotFoundError):
        stats = _expanded(json.loads((CACHE / STATS).read_text()))
        edited = _edited_test_files()
        # mutmut maps only the tests it has not timed yet: an edited test is mapped again.
        stats["duration_by_test"] = {t: d for t, d in stats["duration_by_test"].items()
                                     if t.partition("::")[0] not in edited}
        _write_json(MUTANTS / STATS, stats)


def _test_files(root: Path) -> dict[str, str]:
    """Each test file under `root` by its path and the SHA-256 of its text."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "tests").glob("*.py"))}


def _edited_test_files() -> set[str]:
    """The test files not as they were when the map was last collected (all, without a record)."""
    with contextlib.suppress(FileNotFoundError):
        mapped = json.loads((CACHE / TEST_FILES).read_text())
        return {f for f, digest in _test_files(ROOT).items() if mapped.get(f) != digest}
    return set(_test_files(ROOT))


_saving = threading.Lock()


def save(*, between_runs: bool = False) -> None:
    """mutants/ into the cache. A verdict that is not one (interrupted, or an exit code mutmut does
    not know: a test process killed from outside) is saved as not judged, and, `between_runs`,
    put back so in mutants/ too, for the next run to judge."""
    known = KILLED | SURVIVED | NO_TESTS | TIMEOUTS | {None}
    with _saving:
        for module, meta in _metas(MUTANTS).items():
            meta["exit_code_by_key"] = {k: (v if v in known else None) for k, v in meta["exit_code_by_key"].items()}
            _write_json(CACHE / f"{module}.meta", meta)
            if between_runs:
                _write_json(MUTANTS / f"{module}.meta", meta)
        with contextlib.suppress(OSError, ValueError):
            _write_json(CACHE / STATS, _compact(json.loads((MUTANTS / STATS).read_text())))
        with contextlib.suppress(OSError, ValueError):
            _write_json(CACHE / TEST_FILES, json.loads((MUTANTS / TEST_FILES).read_text()))


def _compact(stats: dict) -> dict:
    """mutmut's stats, smaller: each function's tests as numbers into one list of the tests."""
    tests = sorted(stats["duration_by_test"].keys() | {t for ts in stats["tests_by_mangled_function_name"].values()
                                                        for t in ts})
    number = {test: n for n, test in enumerate(tests)}
    return {**stats, "tests": tests,
            "duration_by_test": {t: round(d, 3) for t, d in stats["duration_by_test"].items()},
            "tests_by_mangled_function_name": {f: sorted(number[t] for t in ts)
                                               for f, ts in stats["tests_by_mangled_function_name"].items()}}


def _expanded(stats: dict) -> dict:
    if "tests" not in stats:
        return stats
    tests = stats.pop("tests")
    return {**stats, "tests_by_mangled_function_name": {f: [tests[n] for n in ns]
                                                        for f, ns in stats["tests_by_mangled_function_name"].items()}}


# --- the summary ----------------------------------------------------------------------------

def equivalent() -> set[str]:
    """Survivors judged equivalent: the first `code` of each list item in tests/equivalent_mutants.md."""
    return set(re.findall(r"^- `([^`]+)`", EQUIVALENT.read_text(), re.M)) if EQUIVALENT.exists() else set()


def row(module: str, judged: dict[str, int | None], same: set[str]) -> str:
    mine = {name: code for name, code in judged.items() if _module_of(name) == module}
    count = Counter("killed" if c in KILLED else "survived" if c in SURVIVED else "no tests" if c in NO_TESTS
                    else "timeout" if c in TIMEOUTS else "not run" for c in mine.values())
    listed = sum(1 for name, code in mine.items() if code in SURVIVED and name in same)
    decided = len(mine) - listed - count["not run"]
    score = f"{100 * (count['killed'] + count['timeout']) / decided:.0f} %" if decided > 0 else "-"
    return (f"| `{module}` | {len(mine)} | {count['killed']} | {count['survived'] - listed} | {listed} "
            f"| {count['timeout']} | {count['no tests']} | {count['not run']} | {score} |")


def write_summary(last_run: str = "") -> None:
    """The table from the cache, every module; the "## ..." sections after it (notes kept by
    hand) are kept, and so is the last run's line when this is not a run."""
    judged, same, notes = verdicts(), equivalent(), ""
    if SUMMARY.exists():
        text = SUMMARY.read_text()
        table, _, rest = text.partition("\n## ")
        notes = "\n## " + rest if rest else ""
        if not last_run:
            last_run = next((line for line in table.splitlines() if line.startswith("Last run:")), "")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    SUMMARY.write_text(
        "# Mutation testing: what every module's mutants gave\n\n"
        f"Written by `python -m tests.mutation` (mutmut, SQLite) at {stamp}, from the verdicts\n"
        "kept in tests/mutation-cache/.\n"
        "Killed = a test failed; survived = no test failed and the mutant is not in\n"
        "tests/equivalent_mutants.md; equivalent = survived but listed there with the reason it\n"
        "changes nothing; timeout = the tests ran past mutmut's limit (counted as killed);\n"
        "no tests = no test calls the function; not run = not judged yet.\n"
        "Score = (killed + timeout) / (mutants - equivalent - not run).\n\n"
        + (f"{last_run}\n\n" if last_run else "")
        + "| module | mutants | killed | survived | equivalent | timeout | no tests | not run | score |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        + "\n".join(row(m, judged, same) for m in MODULES) + "\n" + notes
    )


# --- the run ----------------------------------------------------------------------------------

def _environment(data_dir: Path, postgres: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    return {**env, "UDT_DATA_DIR": str(data_dir), **({"DATABASE_URL": postgres} if postgres else {})}


def _stop_strays(data_dir: Path) -> None:
    """What a stopped or killed test run left behind: processes of this run's group (a test's
    worker finishing its pair), or of its data directory (none should: see tests/processes.py)."""
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            pid = int(proc.name)
            if pid != os.getpid() and (os.getpgid(pid) == os.getpgrp()
                                       or str(data_dir) in (proc / "cmdline").read_bytes().decode(errors="replace")):
                os.kill(pid, signal.SIGKILL)


def judged_here(mutant: str, *, postgres: bool) -> bool:
    """Whether a run on this database judges `mutant`: PostgreSQL's runs judge the PostgreSQL-only
    functions (POSTGRES_TWINS) and SQLite's the rest."""
    return (_function_of(mutant) in POSTGRES_TWINS) == postgres


def _pending(names: list[str], *, postgres: bool) -> int:
    judged = verdicts()
    return sum(1 for name, code in judged.items() if code is None and judged_here(name, postgres=postgres) and any(
        name == n or (n.endswith(".*") and name.startswith(n[:-1])) for n in names))


def run(names: list[str], *, rejudge: bool, children: int, postgres: str | None) -> None:
    """One mutmut run of `names` (module patterns or mutants), in a child process at nice 19."""
    data_dir = Path(tempfile.mkdtemp(prefix="udt-mutation-"))
    command = ["nice", "-n", "19", sys.executable, "-m", "tests.mutation", "--mutmut",
               "--children", str(children), *(["--rejudge"] if rejudge else []),
               *(["--postgres", postgres] if postgres else []), *names]
    try:
        subprocess.run(command, cwd=ROOT, env=_environment(data_dir, postgres), check=False)
    finally:
        _stop_strays(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def main(args: argparse.Namespace) -> int:
    chosen = args.modules or MODULES
    unknown = [m for m in chosen if m not in MODULES]
    if unknown:
        raise SystemExit(f"not a measured module (see MODULES and [tool.mutmut] only_mutate): {unknown}")
    if args.summary:
        write_summary()
        return 0
    lock = (ROOT / ".mutation.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit("another run of tests.mutation is going in this tree") from None
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)  # one process group: paused, resumed or stopped as a whole
    if args.pid_file:
        Path(args.pid_file).write_text(f"{os.getpgrp()}\n")

    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopping.set()
        signal.signal(signum, signal.SIG_IGN)
        os.killpg(os.getpgrp(), signum)  # mutmut and its test runs; this process saves, then ends

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)

    def keep_saving() -> None:
        while not stopping.wait(SAVE_SECONDS):
            save()
            write_summary()

    restore()
    threading.Thread(target=keep_saving, daemon=True).start()
    before, durations, started = verdicts(), verdicts("durations_by_key"), time.monotonic()
    postgres, children = args.postgres, 1 if args.postgres else args.children  # one database: one at a time
    if args.survivors:
        same = equivalent()
        names = [n for n, code in before.items() if code in SURVIVED and n not in same and _module_of(n) in chosen
                 and judged_here(n, postgres=bool(postgres))]
    elif postgres:
        names = [n for n, code in before.items() if (code is None or code in NO_TESTS) and _module_of(n) in chosen
                 and judged_here(n, postgres=True)]
    else:
        names = [f"{_dotted(m)}.*" for m in chosen]
    rejudge, left, idle = bool(args.survivors), None, 0
    while names and not stopping.is_set() and idle < IDLE_PASSES:
        run(names, rejudge=rejudge, children=children, postgres=postgres)
        save(between_runs=True)
        now_left = _pending(names, postgres=bool(postgres))
        if not now_left:
            break
        # Again, for those left unjudged (paused, stopped), unless passes keep judging nothing
        # (mutmut stops before the mutants when a test fails without one: a flaky test).
        idle = idle + 1 if now_left == left else 0
        rejudge, left = False, now_left

    after = verdicts("durations_by_key")
    judged = sum(1 for n, seconds in after.items() if seconds != durations.get(n))
    minutes = (time.monotonic() - started) / 60
    write_summary(f"Last run: {judged} mutants judged in {minutes:.0f} minutes ({judged / max(minutes, 1):.1f} a "
                  f"minute, {children} side by side{', PostgreSQL' if postgres else ''}), ended {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.")
    print(SUMMARY.read_text(), flush=True)
    return 1 if stopping.is_set() else 0


# --- inside the mutmut process ------------------------------------------------------------------

def mutmut_run(names: list[str], *, rejudge: bool, children: int, postgres: bool) -> None:
    """`mutmut run NAMES`, with four changes to mutmut 3.8.1 (checked below):
    - a named mutant that already has a verdict is skipped, unless `rejudge` (mutmut runs
      every mutant it is given by name again), and so is one the other database judges; one
      judged "no tests" is judged again once tests are named for its function;
    - the tests that call a function in a worker process (WORKER_TESTS), or its SQLite twin
      (POSTGRES_TWINS), are added to those mutmut saw calling it;
    - a mutant's tests run quickest first (mutmut hands pytest a set, in no order, and stops at
      the first failure: a mutant a quick test kills is judged in seconds, not minutes);
    - the modules in the order of MODULES (mutmut's own order, quickest first, within one);
    - a mutant whose tests ran while the run was paused gets no verdict."""
    import mutmut
    import mutmut.__main__ as cli

    sys.modules.pop("tests", None)  # this checkout's, imported by `-m tests.mutation`: pytest imports mutants/tests

    if not mutmut.__version__.startswith("3.8."):
        raise SystemExit(f"tests/mutation.py adapts mutmut 3.8, not {mutmut.__version__}: check mutmut_run")

    from mutmut.state import state

    collect, estimate, register, load, make_runner = (
        cli.collect_source_file_mutation_data, cli.estimated_worst_case_time, cli._register_mutant_result,
        cli.collect_or_load_stats, cli.get_mutant_runner,
    )

    def unjudged(*, mutant_names):  # noqa: ANN001, ANN202 - mutmut's signature
        mutants, by_path = collect(mutant_names=mutant_names)
        tests = state().tests_by_mangled_function_name
        return [m for m in mutants if judged_here(m[1], postgres=postgres) and (
            rejudge or m[2] is None or (m[2] in NO_TESTS and tests.get(_function_of(m[1])))  # tests named since
        )], by_path

    def with_tests_mutmut_cannot_see(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - mutmut's signature
        load(*args, **kwargs)
        _write_json(MUTANTS / TEST_FILES, _test_files(MUTANTS))  # the map is of these, now
        tests, durations = state().tests_by_mangled_function_name, state().duration_by_test
        for test, functions in WORKER_TESTS.items():
            for function in functions:
                tests[function].add(test)
        for function, twin in POSTGRES_TWINS.items():
            tests[function] |= tests.get(twin, set())
        for test in {t for ts in tests.values() for t in ts} - durations.keys():
            durations[test] = 0.0  # a test the stats never timed (mutmut sums these to order and to limit)

    def in_module_order(name: str) -> tuple[int, float]:
        module = _module_of(name)
        return (MODULES.index(module) if module else len(MODULES), estimate(name))

    watch = PauseWatch()

    def quickest_first(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - mutmut's signature
        runner = make_runner(*args, **kwargs)
        submit = runner.submit

        def in_order(mutant_name: str, tests: list[str], *rest, **more) -> None:  # noqa: ANN002, ANN003
            durations = state().duration_by_test
            submit(mutant_name, sorted(tests, key=lambda test: (durations.get(test, 0.0), test)), *rest, **more)

        runner.submit = in_order
        return runner

    def unless_paused(result, data_by_name) -> None:  # noqa: ANN001 - mutmut's types
        if watch.paused_since(time.time() - result.duration):
            print(f"\n    paused while {result.mutant_name} ran: it is run again", flush=True)
            result.exit_code = None
        register(result, data_by_name)

    cli.collect_source_file_mutation_data = unjudged
    cli.estimated_worst_case_time = in_module_order
    cli._register_mutant_result = unless_paused
    cli.get_mutant_runner = quickest_first
    cli.collect_or_load_stats = with_tests_mutmut_cannot_see
    cli.cli.main(["run", "--max-children", str(children), *names], prog_name="mutmut")


class PauseWatch:
    """When this process was stopped (SIGSTOP): from the last tick of a thread that ticks every
    second to the SIGCONT that resumed it (or to a tick found late, if no SIGCONT came)."""

    def __init__(self) -> None:
        self.tick = time.time()
        self.pauses: list[tuple[float, float]] = []
        signal.signal(signal.SIGCONT, lambda signum, frame: self._resumed())
        threading.Thread(target=self._ticking, daemon=True).start()

    def _resumed(self) -> None:
        now = time.time()
        self.pauses.append((self.tick, now))
        self.tick = now

    def _ticking(self) -> None:
        while True:
            if time.time() - self.tick > PAUSE_SECONDS:
                self._resumed()
            self.tick = time.time()
            time.sleep(1)

    def paused_since(self, start: float) -> bool:
        if time.time() - self.tick > PAUSE_SECONDS:
            self._resumed()
        return any(end >= start for _, end in self.pauses)


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="modules of MODULES (default: all); with --mutmut, mutant names")
    parser.add_argument("--survivors", action="store_true", help="judge the survivors again (not those listed)")
    parser.add_argument("--summary", action="store_true", help="only write tests/mutation-summary.md")
    parser.add_argument("--children", type=int, default=2, help="mutants side by side")
    parser.add_argument("--postgres", metavar="URL", help="judge the PostgreSQL-only functions (POSTGRES_TWINS) "
                        "on this database, one mutant at a time (its public schema is dropped)")
    parser.add_argument("--pid-file", help="write the run's process group ID there (to pause it: kill -STOP -- -PGID)")
    parser.add_argument("--mutmut", action="store_true", help=argparse.SUPPRESS)  # the mutmut process itself
    parser.add_argument("--rejudge", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = _arguments(sys.argv[1:])
    if arguments.mutmut:
        mutmut_run(arguments.modules, rejudge=arguments.rejudge, children=arguments.children,
                   postgres=bool(arguments.postgres))
    else:
        sys.exit(main(arguments))
