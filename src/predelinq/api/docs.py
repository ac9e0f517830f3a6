"""The OpenAPI schema and its pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``), served
without internet: the pages' scripts, styles and icon come from the installed
``fastapi-offline`` package, under ``ASSETS``, never from a CDN.

The schema and the pages are behind the read token when one is set (the pages fetch the
schema without it: use them on a server without a read token, or through a proxy that adds
the header). The assets are the same public files for everyone, and open.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from predelinq.api.deps import Reader

ASSETS = "/docs/assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")  # swagger-ui-bundle.js, redoc.standalone.js...
OPENAPI_URL = "/openapi.json"


def add_docs(app: FastAPI) -> None:
    """The schema, both pages and their assets on ``app``."""
    app.mount(ASSETS, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")
    app.include_router(_router())


def _router() -> APIRouter:
    router = APIRouter(include_in_schema=False, dependencies=[Reader])

    @router.get(OPENAPI_URL)
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(request.app.openapi())

    @router.get("/docs")
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title="predelinq - Swagger UI",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            # no badge fetched from the online validator (validator.swagger.io)
            swagger_ui_parameters={"validatorUrl": None},
        )

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=OPENAPI_URL,
            title="predelinq - ReDoc",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    return router
