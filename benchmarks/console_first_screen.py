"""Benchmark: the console's first screen on `udt dev` over loopback (issue 21: interactive within 1 s; not a test).

    .venv/bin/python benchmarks/console_first_screen.py --rounds 20

Starts `udt dev` as a person does (a fresh data directory: SQLite, its private Redis, the
demo tenant) on a free port, and reads the sign-in link it prints. Then, at nice 19 like any
client beside the service, headless Chromium opens that link in a fresh browser profile each
round (no cache, no storage) and measures in the page, from the navigation's start to the
moment the Single screen is interactive: signed in, and both user pickers, "Target User" and
"Source User", shown and enabled. Beside it, the same way in the same run:

- /healthz: the smallest answer of the same server (its load event): what a fresh profile,
  a navigation and loopback cost alone;
- GraphiQL's page (/graphql, its load event): React and GraphiQL from the same server.

Prints each round, the p50, p95 and worst of each figure, and the console's JavaScript, gzipped.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.console_support import CHROMIUM, FLAGS, WIDE  # noqa: E402
from tests.support import free_port  # noqa: E402

# Set before the page's own scripts run: when both pickers are there and enabled, note the time.
INTERACTIVE = """(() => {
  const picker = (name) => [...document.querySelectorAll('input[role="combobox"]')].find(
    (box) => [...box.labels].some((label) => label.textContent.trim() === name));
  const ready = () => ['Target User', 'Source User'].every((name) => {
    const box = picker(name);
    return box && !box.disabled && box.checkVisibility();
  });
  new MutationObserver((_, observer) => {
    if (ready()) {
      window.__interactive = performance.now();
      observer.disconnect();
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
})();"""
LOADED = "() => { const n = performance.getEntriesByType('navigation')[0]; return n && n.loadEventEnd > 0 ? n.loadEventEnd : 0; }"


def start_dev(port: int, data_dir: Path) -> tuple[subprocess.Popen, str]:
    """`udt dev` on `port` with its own data directory; the sign-in link it prints."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "UDT_SECRET_KEY")}
    env["UDT_DATA_DIR"] = str(data_dir)
    out = data_dir / "udt-dev.log"
    with out.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "graph.process.cli", "dev", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        link = next((line.split(": ", 1)[1] for line in out.read_text().splitlines() if "signed in as admin by this link" in line), None)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            if link:
                return process, link.strip()
        except OSError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.terminate()
    sys.exit(f"udt dev did not start:\n{out.read_text()}")


def spread(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"  {name:<24} p50 {statistics.median(ordered):6.0f} ms  p95 {p95:6.0f} ms  worst {ordered[-1]:6.0f} ms  (n={len(ordered)})"


def javascript_gzipped() -> int:
    assets = ROOT / "graph/server/static/console/assets"
    return sum(len(gzip.compress(path.read_bytes(), 9)) for path in assets.glob("*.js"))


async def measure(base: str, link: str, rounds: int) -> dict[str, list[float]]:
    from playwright.async_api import Browser, async_playwright

    async def fresh_profile(browser: Browser, url: str, until: str) -> float:
        context = await browser.new_context(viewport=WIDE)
        try:
            page = await context.new_page()
            await page.add_init_script(INTERACTIVE)
            await page.goto(url, wait_until="commit")
            handle = await page.wait_for_function(until, timeout=30_000)
            return float(await handle.json_value())
        finally:
            await context.close()

    figures: dict[str, list[float]] = {"console, first screen": [], "/healthz": [], "GraphiQL page": []}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        await fresh_profile(browser, link, "() => window.__interactive || 0")  # the first start of a profile warms Chromium
        for round_ in range(1, rounds + 1):
            console = await fresh_profile(browser, link, "() => window.__interactive || 0")
            healthz = await fresh_profile(browser, f"{base}/healthz", LOADED)
            graphiql = await fresh_profile(browser, f"{base}/graphql", LOADED)
            for name, value in zip(figures, (console, healthz, graphiql)):
                figures[name].append(value)
            print(f"round {round_:>2}: console interactive {console:5.0f} ms   /healthz {healthz:4.0f} ms   GraphiQL page {graphiql:5.0f} ms")
        await browser.close()
    return figures


async def main(args: argparse.Namespace) -> None:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="udt-bench-") as data_dir:
        dev, link = start_dev(port, Path(data_dir))
        try:
            os.nice(19)  # the browser and its driver inherit it; `udt dev`, started before, keeps its own
            print(f"udt dev on 127.0.0.1:{port} (fresh data); client at nice 19; load {os.getloadavg()[0]:.1f}")
            figures = await measure(f"http://127.0.0.1:{port}", link, args.rounds)
        finally:
            dev.terminate()
            dev.wait(timeout=30)
    print("all rounds, from the navigation's start:")
    for name, values in figures.items():
        print(spread(name, values))
    first = figures["console, first screen"]
    print(f"  console interactive within 1 s: {sum(v <= 1000 for v in first)} of {len(first)}")
    print(f"  console JavaScript: {javascript_gzipped() / 1024:.0f} KB gzipped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    asyncio.run(main(parser.parse_args()))
