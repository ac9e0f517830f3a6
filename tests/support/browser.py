"""A real browser for the dashboard's tests and screenshots: Debian's headless Chromium
(``/usr/bin/chromium``) driven by Playwright, whose own browser download is never used.

A page is watched from the moment it opens: every console error, uncaught page error, failed
request and sub-resource answered with an HTTP error is a ``Problem``, and every request the
browser made is kept (the read token must never appear in one). A chart is a Plotly div
(``<div class="chart" id="chart-NAME">``, see src/predelinq/api/ui); ``wait_for_chart`` waits
until ui.js marks it rendered and Plotly has drawn it, and ``chart_points`` counts what was
drawn: markers, bars, heatmap images, canvases. ``Dashboard`` is the served database the
page tests share (built in tests/api/ui/conftest.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    ViewportSize,
    sync_playwright,
)

from predelinq.config import Settings
from predelinq.retraining.result import RetrainResult
from support.synthetic import Loaded

CHROMIUM = Path("/usr/bin/chromium")
# Root needs --no-sandbox. Without the background-networking flags Chromium reaches for
# Google's services at start-up; this closed network refuses them and they show up as errors.
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
# Generous: two cores are shared by the server, the browser and other people's tests.
TIMEOUT_MS = 30_000
# Every dashboard page (the Customer page without a customer is its lookup form).
PAGES = ("/ui", "/ui/history", "/ui/models", "/ui/drift", "/ui/customers", "/ui/admin")

# What Plotly draws per data point, by trace kind (plotly.js's SVG layers).
MARKERS = ".scatterlayer .point"
BARS = ".barlayer .point"
HEATMAP_IMAGES = ".heatmaplayer image"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium, closed when the block ends."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(LAUNCH_ARGS), headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass(frozen=True)
class Problem:
    """Something that went wrong while a page loaded or ran."""

    kind: str  # "console", "pageerror", "requestfailed" or "http"
    detail: str
    url: str


@dataclass(frozen=True)
class Sent:
    """A request the browser made."""

    method: str
    url: str


class WatchedPage:
    """A page with everything that went wrong on it, and every request it made, recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self._problems: list[Problem] = []
        self._sent: list[Sent] = []
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", self._console)
        page.on("pageerror", self._page_error)
        page.on("request", self._request)
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems)

    @property
    def sent(self) -> list[Sent]:
        return list(self._sent)

    def forget(self) -> None:
        """Start recording afresh (after an expected error page, say)."""
        self._problems.clear()
        self._sent.clear()

    def open(self, url: str) -> Response:
        """Navigate to ``url`` and wait for the load event: the page's scripts (synchronous,
        at the end of its body) have run; ``wait_for_chart`` waits for Plotly's drawing.
        Waiting for an idle network instead cost 0.5 s a page (58 s against 68 s for these
        tests). The response of the document the navigation ended on."""
        response = self.page.goto(url, wait_until="load")
        assert response is not None, f"{url}: no response"
        return response

    def submit_token(self, form: str, token: str) -> Response:
        """Type ``token`` into the password field of the ``form`` (a selector) and submit it;
        the response the page ends on."""
        self.page.fill(f"{form} input[type='password'][name='token']", token)
        with self.page.expect_navigation() as navigation:
            self.page.click(f"{form} button[type='submit']")
        response = navigation.value
        assert response is not None
        return response

    def assert_clean(self) -> None:
        assert not self._problems, "\n".join(
            f"{p.kind}: {p.detail} ({p.url})" for p in self._problems
        )

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._problems.append(Problem("console", message.text, message.location["url"]))

    def _page_error(self, error: Exception) -> None:
        self._problems.append(Problem("pageerror", str(error), self.page.url))

    def _request(self, request: Request) -> None:
        self._sent.append(Sent(request.method, request.url))

    def _failed(self, request: Request) -> None:
        self._problems.append(Problem("requestfailed", request.failure or "failed", request.url))

    def _response(self, response: Response) -> None:
        # a document's own status is the test's to judge (a refused token is a 403 page)
        if response.status >= 400 and not response.request.is_navigation_request():
            self._problems.append(Problem("http", str(response.status), response.url))


@contextmanager
def watched_page(browser: Browser) -> Iterator[WatchedPage]:
    """A page in a fresh context (no cookies) at the dashboard's size, closed afterwards."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        yield WatchedPage(context.new_page())
    finally:
        context.close()


@dataclass(frozen=True)
class ChartPoints:
    """What Plotly drew in one chart, and how many values its traces hold."""

    markers: int
    bars: int
    heatmap_images: int
    canvases: int
    traces: int
    values: int  # the points of every trace: its y (or z cells, for a heatmap)


# plotly.js keeps the traces it drew on the div as ``data``; a heatmap's z is rows of cells
_TRACE_VALUES = """(div) => (div.data || []).map((trace) => {
    const values = trace.z !== undefined ? trace.z : trace.y !== undefined ? trace.y : trace.x;
    if (!Array.isArray(values)) return 0;
    return values.reduce((n, v) => n + (Array.isArray(v) ? v.length : 1), 0);
})"""


def wait_for_chart(page: Page, chart_id: str, timeout_ms: int = TIMEOUT_MS) -> None:
    """Wait until ui.js has marked ``#chart_id`` rendered and Plotly's SVG is in it; fail at
    once when the page says the chart has no data instead (``#chart_id-empty``)."""
    drawn = f"#{chart_id}.chart[data-rendered='true']"
    found = page.wait_for_selector(f"{drawn}, #{chart_id}-empty", timeout=timeout_ms)
    assert found is not None and found.get_attribute("id") == chart_id, (
        f"{chart_id} not drawn: {found.inner_text() if found else 'missing'}"
    )
    page.wait_for_selector(f"#{chart_id} .main-svg", state="attached", timeout=timeout_ms)


def chart_points(page: Page, chart_id: str) -> ChartPoints:
    """Count what was drawn in ``#chart_id`` (after ``wait_for_chart``)."""
    chart = page.locator(f"#{chart_id}")
    values: list[int] = chart.evaluate(_TRACE_VALUES)
    return ChartPoints(
        markers=chart.locator(MARKERS).count(),
        bars=chart.locator(BARS).count(),
        heatmap_images=chart.locator(HEATMAP_IMAGES).count(),
        canvases=chart.locator("canvas").count(),
        traces=len(values),
        values=sum(values),
    )


def chart_ids(page: Page) -> list[str]:
    """The ids of every chart div on the page, in document order."""
    ids: list[str] = page.locator("div.chart").evaluate_all("(divs) => divs.map((d) => d.id)")
    return ids


def wait_until_cached(client: httpx.Client, seconds: float, paths: Iterable[str] = PAGES) -> None:
    """Ask for each page until it no longer says its cached aggregates (the drift history,
    the monitoring report) are being computed (``X-Dashboard-Cache: computing``)."""
    deadline = time.monotonic() + seconds
    for path in paths:
        while True:
            answer = client.get(path)
            assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:300]}"
            if answer.headers["x-dashboard-cache"] != "computing":
                break
            assert time.monotonic() < deadline, f"{path} still computing after {seconds:.0f} s"
            time.sleep(0.5)


@dataclass(frozen=True)
class Dashboard:
    """A live server on a database worth looking at: what it serves, and what was done to it."""

    client: httpx.Client
    loaded: Loaded
    runs: tuple[RetrainResult, ...]  # the retrains behind it, oldest first
    customer_id: str  # a customer scored through the server ...
    customer_dates: tuple[str, ...]  # ... at each of these dates (at least)

    @property
    def base_url(self) -> str:
        return str(self.client.base_url).rstrip("/")

    @property
    def settings(self) -> Settings:
        return self.loaded.settings
