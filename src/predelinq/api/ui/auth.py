"""Who may see the dashboard and act in it.

**Reading.** With a read token set, a page needs a session: ``POST /ui/login`` with the read
token (or the admin token) in the form body sets an HttpOnly, SameSite=Strict cookie holding
an HMAC of the token, never the token itself, and scoped to ``/ui``. Without a read token the
pages are open, as the JSON reads are. A browser sends no bearer header on a page load; the
cookie is how the read token is honoured.

**Acting.** Trigger, promote and rollback need the admin token typed into the confirmation
form each time: it travels in the POST body only, so it is never in a URL, a cookie or the
browser's history, and a forged cross-site form cannot act without it. In development mode
with no admin token, they are open, as the JSON admin routes are."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request
from pydantic import SecretStr

from predelinq.api.deps import AppState

COOKIE = "predelinq_ui"
COOKIE_PATH = "/ui"
SESSION_HOURS = 12
LOGIN_PATH = "/ui/login"


def session_value(token: SecretStr) -> str:
    """The cookie's value for a token: an HMAC keyed by the token, so the cookie never holds
    the token and changes when the token does."""
    key = token.get_secret_value().encode()
    return hmac.new(key, b"predelinq dashboard session", hashlib.sha256).hexdigest()


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def reader_tokens(state: AppState) -> list[SecretStr]:
    """The tokens that open the pages: the read token and the admin token; none when the
    pages are open (no read token set)."""
    settings = state.settings
    if settings.read_token is None:
        return []
    return [token for token in (settings.read_token, settings.admin_token) if token is not None]


def page_token(state: AppState, given: str) -> SecretStr | None:
    """The token (read or admin) that ``given`` is, when it opens the pages."""
    return next(
        (token for token in reader_tokens(state) if _equal(given, token.get_secret_value())), None
    )


def has_session(state: AppState, request: Request) -> bool:
    tokens = reader_tokens(state)
    if not tokens:
        return True
    cookie = request.cookies.get(COOKIE, "")
    return any(_equal(cookie, session_value(token)) for token in tokens)


def require_session(state: AppState, request: Request) -> None:
    """To the login page (303) without a session when a read token is set."""
    if not has_session(state, request):
        raise HTTPException(303, "log in first", headers={"Location": LOGIN_PATH})


def admin_allowed(state: AppState, given: str) -> bool:
    """Whether ``given`` (the form's token) is the admin token; always with none set
    (development mode)."""
    expected = state.settings.admin_token
    return expected is None or _equal(given, expected.get_secret_value())
