"""The dashboard's pages under ``/ui``: server-rendered templates (``templates/``), charts
drawn by Plotly's JS from the installed ``plotly`` package (no CDN: the pages work offline),
and one small script (``static/ui.js``) that hands each chart's figure to Plotly.

Routes are thin: ``views.py`` gathers, the template renders. Every page answers with
``Server-Timing: app;dur=<ms>`` (the server's time for it) and ``X-Dashboard-Cache:
ready|computing`` (whether the cached reports behind it were ready). Reading needs a session
when a read token is set, acting needs the admin token in the form (``auth.py``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from predelinq.api.actions import move, start_retrain
from predelinq.api.deps import AppState, State
from predelinq.api.errors import status_of
from predelinq.api.ui import auth, views
from predelinq.errors import PredelinqError
from predelinq.retraining.jobs import get_job
from predelinq.statuses import ChampionAction, JobStatus

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(fmt=views.fmt, when=views.as_days)
# a date in a figure is written as ISO text (charts.py does so itself; this is the net)
templates.env.policies["json.dumps_kwargs"] = {"default": str}
STATIC = {
    "plotly.min.js": Path(str(files("plotly") / "package_data" / "plotly.min.js")),
    "ui.js": HERE / "static" / "ui.js",
    "ui.css": HERE / "static" / "ui.css",
}
STATIC_MAX_AGE = 86400  # a day: plotly.min.js is 4.8 MB, fetched once, not per page
JOB_REFRESH_SECONDS = 2
ACTOR = "dashboard"
PAGES = [
    ("overview", "/ui", "Overview"),
    ("history", "/ui/history", "Retraining history"),
    ("models", "/ui/models", "Models"),
    ("drift", "/ui/drift", "Drift"),
    ("customers", "/ui/customers", "Customer"),
    ("admin", "/ui/admin", "Admin"),
]


async def _started(request: Request) -> None:
    request.state.ui_started = time.perf_counter()


router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(_started)])


async def _session(state: State, request: Request) -> None:
    auth.require_session(state, request)


Session = Depends(_session)


def _render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    page: str,
    ready: bool = True,
    status_code: int = 200,
) -> Response:
    response = templates.TemplateResponse(
        request,
        template,
        {**context, "pages": PAGES, "page": page, "ready": ready},
        status_code=status_code,
    )
    elapsed_ms = (time.perf_counter() - request.state.ui_started) * 1000
    response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
    response.headers["X-Dashboard-Cache"] = "ready" if ready else "computing"
    return response


def _refused(request: Request, message: str, status_code: int, page: str = "admin") -> Response:
    return _render(
        request, "refused.html", {"message": message}, page=page, status_code=status_code
    )


@router.get("/static/{name}")
async def static(name: str) -> FileResponse:
    path = STATIC.get(name)
    if path is None:
        raise HTTPException(404, f"no static file {name}")
    media = "text/css" if name.endswith(".css") else "text/javascript"
    headers = {"Cache-Control": f"public, max-age={STATIC_MAX_AGE}"}
    return FileResponse(path, media_type=media, headers=headers)


def _page(
    request: Request,
    state: AppState,
    page: str,
    view: Callable[[views.Reports], dict[str, Any]],
    status_code: int = 200,
) -> Response:
    """A page that shows the cached reports: gathered by ``view``, rendered by the page's
    template."""
    found = views.reports(state)
    context = {**view(found), "found": found}
    return _render(
        request,
        f"{page}.html",
        context,
        page=page,
        ready=found.ready,
        status_code=404 if context.get("missing") else status_code,
    )


@router.get("", dependencies=[Session])
def overview(request: Request, state: State) -> Response:
    return _page(request, state, "overview", lambda found: views.overview(state, found))


@router.get("/history", dependencies=[Session])
def history(request: Request, state: State) -> Response:
    return _page(request, state, "history", lambda found: views.history(state, found))


@router.get("/models", dependencies=[Session])
def models(request: Request, state: State, version: str | None = None) -> Response:
    return _page(request, state, "models", lambda found: views.models(state, found, version))


@router.get("/drift", dependencies=[Session])
def drift(request: Request, state: State) -> Response:
    return _page(request, state, "drift", lambda found: views.drift(state, found))


@router.get("/customers", dependencies=[Session])
def customers(request: Request, state: State, customer_id: str | None = None) -> Response:
    """The lookup form; with ``customer_id``, that customer (404 when unknown)."""
    # PostgreSQL's text cannot hold NUL: such an id is no customer's (404), not a query error
    wanted = (customer_id or "").strip()[:255].replace("\x00", "\ufffd")
    return _page(request, state, "customers", lambda found: views.customer(state, found, wanted))


@router.get("/admin", dependencies=[Session])
def admin(request: Request, state: State) -> Response:
    return _render(request, "admin.html", views.admin(state), page="admin")


ACTIONS = {
    "trigger": "Retrain now",
    "promote": "Promote a version",
    "rollback": "Roll back the champion",
}


@router.get("/admin/confirm", dependencies=[Session])
def confirm(request: Request, state: State, action: str, version: str | None = None) -> Response:
    """The confirmation of an action: what it will do, and a form for the admin token."""
    if action not in ACTIONS:
        return _refused(request, f"unknown action {action!r}", 404)
    if action == "promote" and not version:
        return _refused(request, "choose a version to promote", 400)
    context = {
        "action": action,
        "title": ACTIONS[action],
        "version": version,
        "admin_open": state.settings.admin_token is None,
    }
    return _render(request, "confirm.html", context, page="admin")


Token = Annotated[str, Form(max_length=1024)]
Reason = Annotated[str, Form(max_length=500)]


def _admin_or_refused(request: Request, state: AppState, token: str) -> Response | None:
    if auth.admin_allowed(state, token):
        return None
    log.warning("dashboard: admin action refused, wrong token, from %s", request.client)
    return _refused(request, "admin token refused: the action was not taken", 403)


@router.post("/admin/trigger", dependencies=[Session])
def trigger(
    request: Request,
    state: State,
    token: Token = "",
    reason: Reason = "dashboard trigger",
    force: Annotated[bool, Form()] = False,
) -> Response:
    refused = _admin_or_refused(request, state, token)
    if refused is not None:
        return refused
    try:
        job_id, _ = start_retrain(
            state, reason=reason or "dashboard trigger", actor=ACTOR, force=force
        )
    except PredelinqError as error:
        return _refused(request, str(error), status_of(error))
    return RedirectResponse(f"/ui/jobs/{job_id}", status_code=303)


@router.post("/admin/{action}", dependencies=[Session])
def move_champion(
    request: Request,
    state: State,
    action: str,
    token: Token = "",
    version: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    """Promote ``version``, or roll back (to ``version``, default the previous champion)."""
    moves = {"promote": ChampionAction.PROMOTE, "rollback": ChampionAction.ROLLBACK}
    if action not in moves:
        return _refused(request, f"unknown action {action!r}", 404)
    refused = _admin_or_refused(request, state, token)
    if refused is not None:
        return refused
    try:
        move(state, moves[action], version or None, actor=ACTOR)
    except PredelinqError as error:
        return _refused(request, str(error), status_of(error))
    return RedirectResponse("/ui/models", status_code=303)


@router.get("/jobs/{job_id}", dependencies=[Session])
def job(request: Request, state: State, job_id: str) -> Response:
    found = get_job(state.engine, job_id[:64])
    if found is None:
        return _refused(request, f"no job {job_id[:64]}", 404)
    running = found.status == JobStatus.RUNNING
    context = {"job": found, "refresh": JOB_REFRESH_SECONDS if running else None}
    return _render(request, "job.html", context, page="admin")


@router.get("/login")
def login_form(request: Request, state: State) -> Response:
    return _render(request, "login.html", {"open": not auth.reader_tokens(state)}, page="login")


@router.post("/login")
def login(request: Request, state: State, token: Token = "") -> Response:
    given = auth.page_token(state, token)
    if given is None:
        log.warning("dashboard: login refused, wrong token, from %s", request.client)
        return _render(
            request,
            "login.html",
            {"open": False, "message": "token refused"},
            page="login",
            status_code=403,
        )
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        auth.COOKIE,
        auth.session_value(given),
        max_age=auth.SESSION_HOURS * 3600,
        path=auth.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse(auth.LOGIN_PATH, status_code=303)
    response.delete_cookie(auth.COOKIE, path=auth.COOKIE_PATH)
    return response
