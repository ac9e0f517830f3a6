"""The HTTP API, built by a factory: ``create_app(settings)``. Importing this package builds
nothing, reads no setting and opens nothing.

For ASGI servers:

- ``uvicorn --factory predelinq.api:app_from_environment`` (what ``predelinq serve`` runs):
  each worker reads its settings (environment, ``predelinq.toml``) and builds the app;
- ``uvicorn predelinq.api:app`` (the seed's command): the same app, built on the first
  access of the attribute ``app``.
"""

from __future__ import annotations

from fastapi import FastAPI

from predelinq.api.factory import create_app
from predelinq.config import Settings

__all__ = ["app_from_environment", "create_app"]


def app_from_environment() -> FastAPI:
    """The app for the settings of the environment and ``predelinq.toml``: the zero-argument
    factory for ``uvicorn --factory``."""
    return create_app(Settings())


def __getattr__(name: str) -> FastAPI:
    """``predelinq.api.app``, the ASGI app of ``uvicorn predelinq.api:app``: built once, on
    first access."""
    if name == "app":
        built = app_from_environment()
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
