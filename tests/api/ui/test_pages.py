"""Every dashboard page in a real browser (headless Chromium): it answers 200 with its
timing and cache headers, loads with no console error, page error or failed request, asks
nothing of any other host, and each of its charts is rendered with data points drawn.

Rendering is checked on SQLite only: a page reads through the same library functions on
both backends (those have their own tests on both), and what the browser sees of them does
not depend on the backend. The admin flow, which writes, runs on both (test_admin.py).
"""

from __future__ import annotations

import re
import time

import pytest

from predelinq.api import create_app
from support.browser import (
    PAGES,
    ChartPoints,
    Dashboard,
    WatchedPage,
    chart_ids,
    chart_points,
    wait_for_chart,
    wait_until_cached,
)
from support.http import free_port, serve

# page -> (path, its charts); {customer} and {version} are filled in
SHOWN: dict[str, tuple[str, tuple[str, ...]]] = {
    "overview": ("/ui", ("chart-realised", "chart-triggers")),
    "history": ("/ui/history", ("chart-auc", "chart-gate", "chart-duration")),
    "models": ("/ui/models", ("chart-importance", "chart-calibration", "chart-histogram")),
    "models-version": (
        "/ui/models?version={version}",
        ("chart-importance", "chart-calibration", "chart-histogram"),
    ),
    "drift": ("/ui/drift", ("chart-psi-heatmap", "chart-score-over-time")),
    "customer": ("/ui/customers?customer_id={customer}", ("chart-score-history", "chart-reasons")),
    "customer-form": ("/ui/customers", ()),
    "admin": ("/ui/admin", ()),
}
HEATMAPS = {"chart-psi-heatmap"}
WATCH_SECONDS = 10
READY_SECONDS = 180  # the cached aggregates of the dashboard's database: about 3 s
SERVER_TIMING = re.compile(r"app;dur=\d+(\.\d+)?")


def _url(dashboard: Dashboard, path: str) -> str:
    rejected = dashboard.runs[1].model_version  # registered, never served
    return dashboard.base_url + path.format(customer=dashboard.customer_id, version=rejected)


def _least_points(dashboard: Dashboard, chart: str) -> int:
    """The fewest data points ``chart`` may draw on the dashboard's data."""
    return {
        "chart-auc": len(dashboard.runs),  # one per run
        "chart-duration": len(dashboard.runs),
        "chart-score-history": len(dashboard.customer_dates),  # one per logged score at least
    }.get(chart, 1)


def assert_local(page: WatchedPage, base_url: str) -> None:
    """Every request the page made went to the server under test: no CDN, no font host."""
    elsewhere = [s.url for s in page.sent if not s.url.startswith((base_url, "data:", "blob:"))]
    assert not elsewhere, elsewhere


@pytest.mark.parametrize("name", list(SHOWN))
def test_a_page_loads_clean_and_draws_its_charts(
    dashboard: Dashboard, page: WatchedPage, name: str
) -> None:
    path, charts = SHOWN[name]
    response = page.open(_url(dashboard, path))
    assert response.status == 200, response.text()[:500]
    headers = response.headers
    assert headers["x-dashboard-cache"] == "ready"
    assert SERVER_TIMING.fullmatch(headers["server-timing"]), headers["server-timing"]
    for chart in charts:
        wait_for_chart(page.page, chart)
    assert sorted(chart_ids(page.page)) == sorted(charts)  # every chart on the page is checked
    drawn: dict[str, ChartPoints] = {chart: chart_points(page.page, chart) for chart in charts}
    for chart, points in drawn.items():
        assert points.traces >= 1 and points.values >= 1, (chart, points)
        if chart in HEATMAPS:
            assert points.heatmap_images >= 1, (chart, points)
        else:
            assert points.markers + points.bars >= _least_points(dashboard, chart), (chart, points)
    page.assert_clean()
    assert_local(page, dashboard.base_url)


def test_the_navigation_reaches_every_page(dashboard: Dashboard, page: WatchedPage) -> None:
    """Each link of the navigation bar opens its page, clean, in one browsing session."""
    page.open(dashboard.base_url + "/ui")
    links = page.page.locator("nav a[href^='/ui']")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert hrefs == list(PAGES), hrefs
    for href in hrefs:
        with page.page.expect_navigation() as navigation:
            page.page.click(f"nav a[href='{href}']")
        assert navigation.value is not None and navigation.value.status == 200, href
        assert page.page.url == dashboard.base_url + str(href)
        assert page.page.locator("nav a[aria-current='page']").get_attribute("href") == href
    page.assert_clean()
    assert_local(page, dashboard.base_url)


def test_the_customer_form_looks_a_customer_up(dashboard: Dashboard, page: WatchedPage) -> None:
    page.open(dashboard.base_url + "/ui/customers")
    page.page.fill("input[name='customer_id']", dashboard.customer_id)
    with page.page.expect_navigation() as navigation:
        page.page.press("input[name='customer_id']", "Enter")
    assert navigation.value is not None and navigation.value.status == 200
    assert page.page.url.endswith(f"/ui/customers?customer_id={dashboard.customer_id}")
    wait_for_chart(page.page, "chart-score-history")
    assert page.page.locator("body").inner_text().count(dashboard.customer_id) >= 1
    page.assert_clean()


def test_an_unknown_customer_is_a_404_page_that_says_so(
    dashboard: Dashboard, page: WatchedPage
) -> None:
    url = dashboard.base_url + "/ui/customers?customer_id=nobody-here"
    response = page.open(url)
    assert response.status == 404
    assert "nobody-here" in page.page.locator("body").inner_text()
    assert chart_ids(page.page) == []
    # Chromium logs the document's own 404 as a console error; nothing else may fail
    assert [(p.kind, p.url) for p in page.problems] == [("console", url)], page.problems


def test_a_page_whose_figures_are_computing_says_so_and_loads_clean(
    dashboard: Dashboard, page: WatchedPage
) -> None:
    """A new server has no cached aggregates: its first page answers at once, says they are
    being computed, and shows what is live, with no error."""
    with serve(create_app(dashboard.settings)) as client:
        base = str(client.base_url).rstrip("/")
        response = page.open(base + "/ui/drift")
        assert (response.status, response.headers["x-dashboard-cache"]) == (200, "computing")
        assert page.page.locator("main[data-ready='false'] #computing").is_visible()
        page.assert_clean()
        assert_local(page, base)
        wait_until_cached(client, READY_SECONDS)  # no computation outlives the server


def test_the_watcher_sees_what_goes_wrong(page: WatchedPage) -> None:
    """The clean pages above are clean because nothing went wrong, not because nothing was
    watched: a console error, a thrown error and a refused request are all recorded."""
    closed = f"http://127.0.0.1:{free_port()}/none"  # nothing listens there
    page.page.set_content(
        f"<script>console.error('logged'); fetch('{closed}').catch(() => {{}});"
        "throw new Error('thrown');</script>"
    )
    deadline = time.monotonic() + WATCH_SECONDS
    while len(page.problems) < 4 and time.monotonic() < deadline:
        page.page.wait_for_timeout(50)
    found = sorted((p.kind, p.detail) for p in page.problems)
    assert [kind for kind, _ in found] == ["console", "console", "pageerror", "requestfailed"]
    assert ("console", "logged") in found and ("pageerror", "thrown") in found, found
    with pytest.raises(AssertionError, match="thrown"):
        page.assert_clean()
