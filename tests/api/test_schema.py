"""Schemathesis against the app's own OpenAPI schema, on a real uvicorn server: no 5xx and
no response that breaks the schema, for a bounded number of generated requests."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import ignored_auth

from support.http import ADMIN


def test_api_conforms_to_its_schema(server):
    client = server.client
    schema = schemathesis.openapi.from_url(f"{client.base_url}/openapi.json")
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err raises here, as wanted

        @given(case=operation.as_strategy())
        @settings(
            max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def conforms(case) -> None:
            # The read token is optional (unset here), so read endpoints rightly answer
            # without one; the admin endpoints' 401/403 are asserted in test_api.py.
            case.call_and_validate(headers=ADMIN, excluded_checks=[ignored_auth])

        conforms()
        checked.append(operation.label)
    assert len(checked) >= 12
