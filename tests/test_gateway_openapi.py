"""Schemathesis over the gateway's own OpenAPI document: generated requests (valid and
invalid) against the app in-process, every answer checked against the document. No 500,
no answer the document does not describe."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from test_gateway_support import MANAGER, ServedGateway, platform  # noqa: F401 - fixtures

from aggregation_gateway.openapi import openapi_document
from market_protocol.emvco import max_device_id_length


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, platform):  # noqa: F811
    with ServedGateway(tmp_path_factory.mktemp("gw-openapi"), platform.url) as gw:
        yield gw


#: Fixed examples by default (the suite's answer does not change from run to run);
#: TRACEPAY_FUZZ_EXPLORE=1 draws new ones each run to look further.
EXPLORE = bool(os.environ.get("TRACEPAY_FUZZ_EXPLORE"))
#: Operations whose input is an opaque, MACed or signed token: a schema-valid string is
#: still refused unless its MAC or signature verifies, which no schema can say.
OPAQUE = {"/q/{token}", "/v1/enrolments/{code}/claim"}
_AUTH = "Basic " + base64.b64encode(f"{MANAGER[0]}:{MANAGER[1]}".encode()).decode()


def _operations(app):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _property_test(operation):
    excluded = [positive_data_acceptance] if operation.path in OPAQUE else []

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, database=None, derandomize=not EXPLORE,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:
        case.call_and_validate(headers={"Authorization": _AUTH}, excluded_checks=excluded)

    return run


def test_every_endpoint_answers_as_documented(served: ServedGateway) -> None:
    failures = []
    for operation in _operations(served.app):
        try:
            _property_test(operation)()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}"[:1500])
    assert not failures, "\n\n".join(failures)


def test_served_document_is_the_module_document(served: ServedGateway) -> None:
    longest = max_device_id_length(served.settings["public_url"])
    assert served.http.get(f"{served.url}/openapi.json").json() == openapi_document(longest)
    pattern = openapi_document(longest)["components"]["schemas"]["EnrolRequest"][
        "properties"]["device_id"]["pattern"]
    assert pattern.endswith(f"{{0,{longest - 1}}}$")
    assert Path  # the document is plain data: json round-trip keeps it equal
