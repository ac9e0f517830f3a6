"""The admin actions in a real browser, on both backends (the jobs table, the retraining lock
and the champion's transaction are the database's): a wrong admin token on the confirmation
form is refused and starts nothing; the right one starts a retrain whose job page follows it
to its end, and the History page then lists one more run. Promote and roll back, reached from
the admin page's links, move the champion (on SQLite). The admin token travels in the form's
body, never in a URL."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Response, expect
from sqlalchemy import Engine, func, select

from predelinq.db.schema import retrain_jobs
from predelinq.retraining.run import retrain
from predelinq.statuses import RunStatus
from support.browser import WatchedPage
from support.http import TOKEN, Served

# A retrain of the 160 customers took 2-5 s; the machine's two cores are shared.
JOB_SECONDS = 180
REASON = "asked for on the dashboard"


def _base(server: Served) -> str:
    return str(server.client.base_url).rstrip("/")


def _jobs(engine: Engine) -> int:
    with engine.connect() as connection:
        count: int = connection.execute(select(func.count()).select_from(retrain_jobs)).scalar_one()
        return count


def _champion(server: Served) -> str:
    versions = server.client.get("/models").json()
    return str(next(v["model_version"] for v in versions if v["champion"]))


def _confirm(page: WatchedPage, token: str, reason: str | None = None) -> Response:
    """Fill the confirmation form that is open and submit it; the response it ends on."""
    if reason is not None:
        page.page.fill("form input[name='reason']", reason)
    return page.submit_token("form", token)


def _runs_listed(page: WatchedPage, base: str) -> list[str]:
    """The History page's runs table, a row's text each."""
    assert page.open(base + "/ui/history").status == 200
    return page.page.locator("#runs tbody tr:has(.status)").all_inner_texts()


def test_a_retrain_from_the_dashboard_needs_the_admin_token(
    server: Served, page: WatchedPage
) -> None:
    base, engine = _base(server), server.loaded.engine
    before = _runs_listed(page, base)
    assert len(before) == 1  # the champion's run

    page.open(base + "/ui/admin")
    with page.page.expect_navigation():
        page.page.click("#action-trigger")
    assert page.page.url == base + "/ui/admin/confirm?action=trigger"
    refused = _confirm(page, "not-the-admin-token")
    assert refused.status == 403
    assert "token refused" in page.page.locator("#refused").inner_text()
    # Chromium logs the refused document's 403 as a console error; nothing else may fail
    assert [(p.kind, p.url) for p in page.problems] == [("console", base + "/ui/admin/trigger")]
    assert _jobs(engine) == 0
    assert server.client.get("/retraining/status").json()["running"] is None
    page.forget()

    page.open(base + "/ui/admin/confirm?action=trigger")
    _confirm(page, TOKEN, REASON)
    found = re.fullmatch(re.escape(base) + r"/ui/jobs/([\w-]+)", page.page.url)
    assert found, page.page.url
    job_id = found.group(1)
    # the page refreshes itself every 2 s while the job runs; expect() follows the reloads
    status = page.page.locator("#job-status")
    expect(status).to_have_text(re.compile(r"^(success|rejected)$"), timeout=JOB_SECONDS * 1000)
    job = server.client.get(f"/retraining/jobs/{job_id}").json()
    assert (job["status"], job["reason"]) == (status.inner_text(), REASON)
    assert _jobs(engine) == 1

    after = _runs_listed(page, base)
    assert len(after) == len(before) + 1
    assert REASON in after[0] and job["status"] in after[0]  # newest first
    assert [s.url for s in page.sent if TOKEN in s.url] == []
    page.assert_clean()


# SQLite only: the forms' moves are checked on both backends over HTTP (test_http.py); here
# the browser follows the admin page's links to them
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_promote_and_roll_back_from_the_dashboard(server: Served, page: WatchedPage) -> None:
    base, engine = _base(server), server.loaded.engine
    first = _champion(server)
    # every customer is already learnt: no evidence for the gate, the version is kept out
    challenger = retrain(engine, server.settings, reason="a challenger", seed=5)
    assert challenger.status == RunStatus.REJECTED and challenger.model_version
    version = challenger.model_version

    page.open(base + "/ui/admin")
    with page.page.expect_navigation():
        page.page.click(f"a[href='/ui/admin/confirm?action=promote&version={version}']")
    assert version in page.page.locator("#what").inner_text()
    promoted = _confirm(page, TOKEN)
    assert (promoted.status, page.page.url) == (200, base + "/ui/models")
    assert _champion(server) == version
    lineage = page.page.locator("#lineage tbody tr").first.inner_text()
    assert "promote" in lineage and version in lineage and "dashboard" in lineage

    page.open(base + "/ui/admin")
    with page.page.expect_navigation():
        page.page.click("#action-rollback")
    rolled_back = _confirm(page, TOKEN)
    assert (rolled_back.status, page.page.url) == (200, base + "/ui/models")
    assert _champion(server) == first
    assert "rollback" in page.page.locator("#lineage tbody tr").first.inner_text()
    assert [s.url for s in page.sent if TOKEN in s.url] == []
    page.assert_clean()
