"""The HTTP API: ``predelinq.api:app`` for uvicorn, ``create_app`` for tests and embedding."""

from predelinq.api.app import create_app

app = create_app()

__all__ = ["app", "create_app"]
