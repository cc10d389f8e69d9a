"""Every EPCIS document the bridge exports validates against GS1's EPCIS 2.0 JSON Schema;
a bad or unknown query is a JSON error, never an invalid document."""

from __future__ import annotations

import copy
import random

import pytest
from epcis_chains import bridge_client, post_chain
from epcis_schema import errors


@pytest.fixture
def client(tmp_path):
    client, service = bridge_client(tmp_path / "b")
    yield client
    service.close()


def test_the_schema_catches_a_broken_document(client):
    """The check can fail: a quantity as text, an unknown bizStep and a lot that is no URI
    (formats are checked too) are all reported."""
    chain = post_chain(client, random.Random(3), 1)
    document = client.get(f"/v1/epcis?trace_code={chain.shopper_code}").json
    assert errors(document) == []
    broken = copy.deepcopy(document)
    broken["epcisBody"]["eventList"][0]["quantityList"][0]["quantity"] = "12"
    broken["epcisBody"]["eventList"][1]["bizStep"] = "selling at the market"
    broken["epcisBody"]["eventList"][2]["quantityList"][0]["epcClass"] = "lot 7"
    found = errors(broken)
    assert any("quantity" in error for error in found), found
    assert any("bizStep" in error for error in found), found
    assert any("'lot 7' is not a 'uri'" in error for error in found), found


def test_every_exported_document_is_valid(client):
    rng = random.Random(20)
    chains = [post_chain(client, rng, seq) for seq in range(1, 16)]
    queries = [f"trace_code={trade['trace_code']}" for chain in chains for trade in chain.trades]
    queries += [f"lot={chain.farm_code}-0" for chain in chains]
    queries += [f"lot={chain.trades[0]['sale']['lines'][0]['lot']}" for chain in chains]
    for query in queries:
        response = client.get(f"/v1/epcis?{query}")
        assert response.status_code == 200 and response.mimetype == "application/ld+json"
        assert errors(response.json) == [], query


@pytest.mark.parametrize(("query", "status", "code"), [
    ("trace_code=nope", 404, "unknown_trace_code"),
    ("lot=no-such-lot", 404, "unknown_lot"),
    ("", 400, "bad_parameter"),
    ("trace_code=a&lot=b", 400, "bad_parameter"),
])
def test_errors_are_json_not_documents(client, query, status, code):
    response = client.get(f"/v1/epcis?{query}")
    assert response.status_code == status and response.mimetype == "application/json"
    assert set(response.json) == {"error", "message"} and response.json["error"] == code
    assert errors(response.json)  # an error answer is not an EPCIS document
