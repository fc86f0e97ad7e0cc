#!/usr/bin/env python3
"""Full-page screenshots of the main pages of a running Segment Planner, for the docs.

Starts no server: point it at one (`make demo` serves http://127.0.0.1:8000). It logs in
through the login form, finds the pages by following links from the workspace page and writes
docs/screenshots/{workspace,brief,dataset,import,jobs,segments,segment,behaviour,discovery,
backlog,investment,run,roadmap,hypotheses,experiment,calibration,learnings,api-docs}.png (workspace.png is the dashboard).

    python scripts/screenshots.py [--base-url URL] [--username demo] [--password ...]

Uses the system chromium (apt-get install chromium); no browser is downloaded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default=os.environ.get("BASE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--username", default="demo")
    parser.add_argument("--password", default="demo-pass-2026")
    parser.add_argument("--workspace", default="demo", help="workspace slug")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800, help="viewport height (pages are "
                        "captured full length)")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM")
                        or shutil.which("chromium") or shutil.which("chromium-browser"))
    return parser.parse_args(argv)


def first_href(page: Any, selector: str, what: str) -> str:
    link = page.locator(selector).first
    if link.count() == 0:
        raise SystemExit(f"no {what} linked from {page.url} (selector {selector!r}); "
                         "import some data first")
    return urljoin(page.url, link.get_attribute("href"))


def shoot(page: Any, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  <- {page.url}")
    return path


def goto(page: Any, url: str) -> None:
    response = page.goto(url, wait_until="networkidle")
    if response is None or not response.ok:
        status = response.status if response is not None else "no response"
        raise SystemExit(f"GET {url}: {status}")


def run(args: argparse.Namespace) -> list[Path]:
    from playwright.sync_api import sync_playwright

    base = args.base_url.rstrip("/") + "/"
    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": args.width, "height": args.height},
                                          device_scale_factor=1)
            context.set_default_timeout(20_000)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))

            goto(page, urljoin(base, "accounts/login/"))
            page.get_by_label("Username").fill(args.username)
            page.get_by_label("Password").fill(args.password)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_load_state("networkidle")
            if "/accounts/login/" in page.url:
                raise SystemExit(f"login as {args.username!r} failed at {page.url}")

            # Workspace: from the list of workspaces (or the redirect to the only one).
            workspace_path = f"/w/{args.workspace}/"
            if not page.url.endswith(workspace_path):
                goto(page, first_href(page, f'a[href="{workspace_path}"]', "workspace"))
            # The dashboard: wait for its first section (the segments by value).
            page.locator("h2:text-is('Segments by value')").wait_for()
            written.append(shoot(page, args.out, "workspace"))
            workspace_url = page.url

            # The printable council brief, linked from the dashboard.
            goto(page, first_href(page, 'a[href$="/brief/"]', "council brief"))
            page.locator("h3:has-text('Decisions recorded')").wait_for()
            written.append(shoot(page, args.out, "brief"))
            goto(page, workspace_url)

            # Dataset (event catalog): the first dataset in the workspace's table.
            goto(page, first_href(page, 'table a[href*="/datasets/"]', "dataset"))
            written.append(shoot(page, args.out, "dataset"))

            # Import (quality report): the newest import that succeeded, else the newest.
            selector = 'table tr:has(.state-succeeded) a[href*="/imports/"]'
            if page.locator(selector).count() == 0:
                selector = 'table a[href*="/imports/"]'
            goto(page, first_href(page, selector, "import"))
            written.append(shoot(page, args.out, "import"))

            # The approved roadmap's timeline: from the navigation bar.
            goto(page, first_href(page, 'nav a:text-is("Roadmap")', "roadmap page"))
            written.append(shoot(page, args.out, "roadmap"))

            # Jobs and the API docs: from the navigation bar.
            goto(page, first_href(page, 'nav a:text-is("Jobs")', "jobs page"))
            written.append(shoot(page, args.out, "jobs"))
            # Segments: the ranked list, the top segment's page with its charts.
            goto(page, first_href(page, 'nav a:text-is("Segments")', "segments"))
            written.append(shoot(page, args.out, "segments"))
            goto(page, first_href(page, 'table a[href*="/segments/"]', "a segment"))
            page.locator("#chart-signals .main-svg").first.wait_for()
            written.append(shoot(page, args.out, "segment"))
            # Behaviour: the first funnel and the first discovery among the recent analyses.
            goto(page, first_href(page, 'nav a:text-is("Behaviour")', "behaviour"))
            behaviour_url = page.url
            goto(page, first_href(page, 'table a[href*="/behaviour/"]:text-matches("^Funnel #")',
                                  "a funnel analysis"))
            page.locator("#chart-funnel .main-svg").first.wait_for()
            written.append(shoot(page, args.out, "behaviour"))
            goto(page, behaviour_url)
            goto(page, first_href(page, 'table a[href*="/behaviour/"]'
                                        ':text-matches("discovery #", "i")',
                                  "a behaviour discovery"))
            page.locator("section:has(h2:has-text('Behaviours that go with')) table").first.wait_for()
            written.append(shoot(page, args.out, "discovery"))
            # Planner: the ranked backlog and the latest optimizer run of the first scenario.
            goto(page, first_href(page, 'nav a:text-is("Backlog")', "backlog"))
            written.append(shoot(page, args.out, "backlog"))
            # An investment's provenance: the checklist's value model (metric -> value).
            checklist = 'table a:text-matches("^Onboarding checklist v2")'
            if page.locator(checklist).count() == 0:
                checklist = 'table a[href*="/investments/"]'
            goto(page, first_href(page, checklist, "an investment"))
            written.append(shoot(page, args.out, "investment"))
            goto(page, first_href(page, 'nav a:text-is("Scenarios")', "scenarios"))
            goto(page, first_href(page, 'table a[href*="/runs/"]', "a run"))
            page.locator("#chart-frontier .main-svg").first.wait_for()
            written.append(shoot(page, args.out, "run"))
            # Hypotheses, the concluded A/B test with its per-segment effects, the learnings.
            goto(page, first_href(page, 'nav a:text-is("Hypotheses")', "hypotheses"))
            written.append(shoot(page, args.out, "hypotheses"))
            # Prefer a hypothesis an experiment has concluded on (its experiment has results).
            selector = ('table tr:has(.state-validated, .state-invalidated, .state-inconclusive) '
                        'a[href*="/hypotheses/"]')
            if page.locator(selector).count() == 0:
                selector = 'table a[href*="/hypotheses/"]'
            # Historical hypotheses (calibration) have no experiment: try them in turn.
            # an experiment's page, not the A/B or quasi-experiment forms (.../new/, .../new/quasi/)
            done = 'a[href*="/experiments/"]:not([href*="/new/"]):not([href*="/edit/"])'
            for href in page.locator(selector).evaluate_all("els => els.map(e => e.href)")[:60]:
                goto(page, href)
                if page.locator(done).count():
                    break
            if page.locator(done).count():
                goto(page, first_href(page, done, "an experiment"))
                page.locator("#chart-forest .main-svg, #chart-series .main-svg").first.wait_for()
                written.append(shoot(page, args.out, "experiment"))
            # Forecast calibration: predicted against realized, by author and evidence level.
            goto(page, first_href(page, 'nav a:text-is("Hypotheses")', "hypotheses"))
            goto(page, first_href(page, 'a[href$="/calibration/"]', "calibration"))
            if page.locator("#chart-calibration").count():
                page.locator("#chart-calibration .main-svg").first.wait_for()
            written.append(shoot(page, args.out, "calibration"))
            goto(page, first_href(page, 'nav a:text-is("Learnings")', "learnings"))
            written.append(shoot(page, args.out, "learnings"))
            goto(page, first_href(page, 'nav a:text-is("API")', "API docs"))
            page.locator(".swagger-ui .info .title").wait_for()
            page.locator(".opblock").first.wait_for()
            written.append(shoot(page, args.out, "api-docs"))
            if errors:
                print("JavaScript errors:\n  " + "\n  ".join(errors), file=sys.stderr)
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.chromium:
        print("chromium not found: apt-get install chromium (or set CHROMIUM=/path)",
              file=sys.stderr)
        return 2
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
