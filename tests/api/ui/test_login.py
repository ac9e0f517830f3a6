"""The read token in a real browser: with one set, every page sends a visitor without a
session to the login page; a wrong token is refused there (403, "token refused") and opens
nothing; the right one opens the Overview, and the session is an HttpOnly cookie that holds no
token. The token never appears in a URL the browser asked for.

On SQLite only: the session is the app's, not the database's (the pages' reads are checked in
test_pages.py)."""

from __future__ import annotations

from playwright.sync_api import Response

from support.browser import PAGES, Dashboard, WatchedPage, wait_for_chart

COOKIE = "predelinq_ui"


def _token(guarded: Dashboard) -> str:
    token = guarded.settings.read_token
    assert token is not None
    return token.get_secret_value()


def _log_in(page: WatchedPage, token: str) -> Response:
    return page.submit_token("form[action='/ui/login']", token)


def test_without_a_session_every_page_sends_the_visitor_to_log_in(
    guarded: Dashboard, page: WatchedPage
) -> None:
    login = guarded.base_url + "/ui/login"
    for path in PAGES:
        response = page.open(guarded.base_url + path)
        assert (response.status, page.page.url) == (200, login), path
        first = response.request.redirected_from
        assert first is not None and first.url == guarded.base_url + path
        redirect = first.response()
        assert redirect is not None and redirect.status == 303
    form = page.page.locator("form[action='/ui/login'][method='post']")
    assert form.locator("input[type='password'][name='token']").count() == 1
    assert page.page.locator(".chart").count() == 0  # nothing of the dashboard shows
    page.assert_clean()


def test_a_wrong_token_is_refused_and_opens_nothing(guarded: Dashboard, page: WatchedPage) -> None:
    login = guarded.base_url + "/ui/login"
    page.open(guarded.base_url + "/ui")
    response = _log_in(page, "not-the-read-token")
    assert response.status == 403
    assert "token refused" in page.page.locator("main").inner_text()
    assert page.page.context.cookies() == []
    # Chromium logs the refused document's 403 as a console error; nothing else may fail
    assert [(p.kind, p.url) for p in page.problems] == [("console", login)], page.problems
    page.forget()
    page.open(guarded.base_url + "/ui")
    assert page.page.url == login  # still no session
    page.assert_clean()


def test_the_read_token_opens_the_overview_and_never_shows_in_a_url(
    guarded: Dashboard, page: WatchedPage
) -> None:
    token = _token(guarded)
    page.open(guarded.base_url + "/ui/drift")
    response = _log_in(page, token)
    assert (response.status, page.page.url) == (200, guarded.base_url + "/ui")
    assert page.page.locator("h1").first.inner_text() == "Overview"
    wait_for_chart(page.page, "chart-realised")
    cookies = page.page.context.cookies()
    assert [(c["name"], c["httpOnly"], c["path"]) for c in cookies] == [(COOKIE, True, "/ui")]
    assert token not in cookies[0]["value"]
    assert page.page.evaluate("document.cookie") == ""  # no script can read the session
    for path in PAGES:
        response = page.open(guarded.base_url + path)
        assert (response.status, page.page.url) == (200, guarded.base_url + path)
    assert [s.url for s in page.sent if token in s.url] == []
    assert any(s.method == "POST" and s.url.endswith("/ui/login") for s in page.sent)
    page.assert_clean()
