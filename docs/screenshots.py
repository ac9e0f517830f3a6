"""The README's screenshots of the dashboard: serve a database with the real app in this
process (uvicorn on a free loopback port), open each page in headless Chromium, 1280 pixels
wide, and write the whole page to ``docs/screenshots/<page>.png``.

The database is the demo's (``make demo`` builds it under data/demo), or the one
``DATABASE_URL`` names (with ``PREDELINQ_MODEL_DIR`` and the other settings from the
environment, as the server reads them). Nothing is written to it: pages only read, and the
app serves with a throwaway admin token and no read token. Each page is taken once its cached
aggregates are ready and every chart is drawn; a page with a console error, a page error or a
failed request is still written, and the script then exits with status 1, naming them.

    make screenshots                     # the demo's database
    DATABASE_URL=postgresql://... PREDELINQ_MODEL_DIR=... .venv/bin/python docs/screenshots.py

The browser is Debian's ``chromium`` driven by Playwright (the dev dependencies), launched as
the tests launch it (tests/support/browser.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import Engine, func, make_url, select

from predelinq.api import create_app
from predelinq.config import Settings
from predelinq.db import open_database
from predelinq.db.schema import customers, predictions

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.browser import (  # noqa: E402  (tests/support: the tests' Chromium and page)
    WatchedPage,
    chart_ids,
    chromium,
    wait_for_chart,
    wait_until_cached,
    watched_page,
)
from support.http import serve  # noqa: E402  (tests/support: a real uvicorn in a thread)

DEMO = ROOT / "data" / "demo"
OUT = ROOT / "docs" / "screenshots"
# On the demo (2,075 customers, SQLite) the drift history and the monitoring report behind
# the pages are computed in a background thread on first use.
READY_SECONDS = 600
PAGES = {
    "overview": "/ui",
    "history": "/ui/history",
    "models": "/ui/models",
    "drift": "/ui/drift",
    "customer": "/ui/customers?customer_id={customer}",
    "admin": "/ui/admin",
}


def settings_to_serve() -> Settings:
    """The environment's settings when ``DATABASE_URL`` is set, else the demo's; served with
    a throwaway admin token and the pages open."""
    if "DATABASE_URL" in os.environ:
        settings = Settings()
    else:
        database = DEMO / "predelinq.db"
        settings = Settings(database_url=f"sqlite:///{database}", model_dir=DEMO / "models")
    url = make_url(settings.database_url)
    # opening a missing SQLite file would create an empty database, and empty pictures
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        sys.exit(f"{url.database} is missing: run `make demo` first, or set DATABASE_URL")
    return settings.model_copy(
        update={"admin_token": SecretStr(secrets.token_urlsafe()), "read_token": None}
    )


def most_scored_customer(engine: Engine) -> str:
    """The customer with the most logged scores (the longest score history), or the first."""
    with engine.connect() as connection:
        found = connection.execute(
            select(predictions.c.customer_id)
            .group_by(predictions.c.customer_id)
            .order_by(func.count().desc(), predictions.c.customer_id)
            .limit(1)
        ).scalar()
        if found is None:
            found = connection.execute(
                select(customers.c.customer_id).order_by(customers.c.customer_id).limit(1)
            ).scalar()
    if found is None:
        sys.exit("the database holds no customer: ingest some data first")
    return str(found)


def take(page: WatchedPage, url: str, path: Path) -> list[str]:
    """Open ``url``, wait for its charts, write the screenshot; what went wrong on it."""
    response = page.open(url)
    for chart in chart_ids(page.page):
        wait_for_chart(page.page, chart)
    page.page.screenshot(path=str(path), full_page=True)
    problems = [f"{p.kind}: {p.detail} ({p.url})" for p in page.problems]
    if response.status != 200:
        problems.insert(0, f"HTTP {response.status}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go")
    parser.add_argument("--customer", help="the Customer page's customer (default: most scored)")
    parser.add_argument("--ready-seconds", type=float, default=READY_SECONDS)
    args = parser.parse_args()
    # a handler on the root logger: the app's JSON request log stays off the terminal
    logging.basicConfig(level=logging.WARNING)
    settings = settings_to_serve()
    engine = open_database(settings)
    customer = args.customer or most_scored_customer(engine)
    engine.dispose()
    paths = {name: path.format(customer=customer) for name, path in PAGES.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    failed: dict[str, list[str]] = {}
    with serve(create_app(settings)) as client, chromium() as browser:
        try:
            wait_until_cached(client, args.ready_seconds, paths.values())
        except AssertionError as error:
            sys.exit(str(error))
        base = str(client.base_url).rstrip("/")
        for name, path in paths.items():
            with watched_page(browser) as page:
                target = args.out / f"{name}.png"
                problems = take(page, base + path, target)
            print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
            if problems:
                failed[name] = problems
    for name, problems in failed.items():
        print(f"{name}: " + "; ".join(problems), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
