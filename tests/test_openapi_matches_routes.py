"""Every service's OpenAPI document lists exactly the operations its app routes.

The documents are written by hand (summaries, schemas, error shapes), so this holds each
one to the routes by (method, path) both ways: a new route without documentation fails,
and so does documentation left behind by a removed route.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_gateway_support import ServedGateway

from service_base.route_check import (
    documented_operations,
    routed_operations,
    undocumented_and_unrouted,
)


def _consumer(tmp_path: Path):
    from consumer_app.app import create_app
    from consumer_app.meta import openapi_document

    dead = "http://127.0.0.1:9"
    return create_app({"gateway_url": dead, "bridge_url": dead}), openapi_document(), None


def _sandbox(tmp_path: Path):
    from sandbox_platform.app import create_app
    from sandbox_platform.openapi import openapi_document

    return create_app({"data_dir": str(tmp_path)}), openapi_document(), None


def _bridge(tmp_path: Path):
    from ledger_bridge.app import create_app
    from ledger_bridge.openapi import openapi_document
    from ledger_bridge.service import BridgeService

    service = BridgeService(tmp_path / "bridge", block_timeout_s=0.05,
                            gateway_key=Ed25519PrivateKey.generate().public_key(),
                            public_url="https://trace.test")
    return create_app(service), openapi_document(), service.close


def _gateway(tmp_path: Path):
    from aggregation_gateway.openapi import openapi_document

    served = ServedGateway(tmp_path, "")
    return served.app, openapi_document(), None


@pytest.mark.parametrize("build", [_consumer, _sandbox, _bridge, _gateway],
                         ids=["consumer", "sandbox-platform", "bridge", "gateway"])
def test_the_document_and_the_routes_name_the_same_operations(build, tmp_path):
    app, document, close = build(tmp_path)
    try:
        rules = list(app.url_map.iter_rules())
        assert len(routed_operations(rules)) >= 3  # the app really was built
        undocumented, unrouted = undocumented_and_unrouted(rules, document)
        assert undocumented == set(), "routed but not in the OpenAPI document"
        assert unrouted == set(), "in the OpenAPI document but not routed"
    finally:
        if close:
            close()


def test_the_check_notices_a_missing_operation_and_a_stale_one():
    class Rule:
        def __init__(self, rule: str, methods: set[str], endpoint: str = "x") -> None:
            self.rule, self.methods, self.endpoint = rule, methods, endpoint

    rules = [Rule("/v1/orders/<int:order_id>", {"GET", "HEAD", "OPTIONS"}),
             Rule("/v1/orders", {"POST"}), Rule("/static/<path:f>", {"GET"}, "static")]
    document = {"paths": {"/v1/orders/{order_id}": {"get": {}, "parameters": []},
                          "/v1/old": {"delete": {}}}}
    assert routed_operations(rules) == {("get", "/v1/orders/{order_id}"),
                                        ("post", "/v1/orders")}
    assert documented_operations(document) == {("get", "/v1/orders/{order_id}"),
                                               ("delete", "/v1/old")}
    assert undocumented_and_unrouted(rules, document) == ({("post", "/v1/orders")},
                                                          {("delete", "/v1/old")})
