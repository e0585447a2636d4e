"""Property-based tests of the OpenAPI contract (schemathesis): every operation answers
what its description promises, for generated valid and invalid parameters, with no 5xx.

Rules that span parameters cannot be written in OpenAPI (``adjusted=true`` only with daily
intervals, ``start`` on or before ``end``, a calendar date that exists), so a schema-valid
request may get a 400 JSON error; every other check of schemathesis applies as is.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from marketlake.serve.app import create_app
from tests.serve.conftest import Served

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 15,
        "generation": {"max-examples": 10},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "400", "404"]},
        },
    }
)


@pytest.fixture(scope="module")
def api_schema(served: Served) -> object:
    """The application's own OpenAPI description, called in process."""
    app = create_app(served.options())
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex="^/api/v1/live")


@schema.parametrize()  # the SSE feed aside: it never ends
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(case: schemathesis.Case) -> None:
    case.call_and_validate()
