"""Harvest declarations and rapid tests in the EPCIS export, read as a partner would."""

from __future__ import annotations

import pytest
from epcis_chains import FARM, KEY, STALL, WHOLESALER, bridge_client
from epcis_schema import errors

from ledger_bridge.sample_trades import line, make_trade


@pytest.fixture
def client(tmp_path):
    client, service = bridge_client(tmp_path / "b")
    yield client
    service.close()


def _post(client, *trades):
    for trade in trades:
        assert client.post("/v1/trades", json=trade).json["status"] == "accepted"


def test_a_harvest_is_a_commissioning_event_with_ilmd(client):
    farm_sale = make_trade(KEY, FARM, 1, [line("cabbage", 20_500, lot="F7-0312",
                                               origin="Shouguang, Shandong"),
                                          line("eggs", unit="piece", quantity=60,
                                               unit_price_fen=80)],
                           payer_id="w1", at_ms=1_763_700_000_000)
    resale = make_trade(KEY, WHOLESALER, 1, [line("cabbage", 5_000)], payer_id="s1",
                        at_ms=1_763_710_000_000)
    _post(client, farm_sale, resale)
    document = client.get(f"/v1/epcis?trace_code={resale['trace_code']}").json
    harvests = [e for e in document["epcisBody"]["eventList"] if e["bizStep"] == "commissioning"]
    cabbage, eggs = harvests
    assert cabbage["type"] == "ObjectEvent" and cabbage["action"] == "ADD"
    assert cabbage["disposition"] == "active"
    assert cabbage["eventTime"] == "2025-11-21T04:40:00.000Z"
    assert cabbage["readPoint"] == {"id": "urn:tracepay:party:farm-a"}
    assert cabbage["quantityList"] == [{
        "epcClass": f"https://id.gs1.org/01/06901234567892/10/{farm_sale['trace_code']}-0",
        "quantity": 20.5, "uom": "KGM"}]
    assert cabbage["ilmd"] == {"cbvmda:lotNumber": "F7-0312",
                               "tracepay:productionPlace": "Shouguang, Shandong"}
    assert eggs["quantityList"][0]["quantity"] == 60 and "uom" not in eggs["quantityList"][0]
    assert eggs["ilmd"] == {"cbvmda:lotNumber": f"{farm_sale['trace_code']}-1"}
    # only a production base declares a harvest
    assert len(harvests) == 2
    assert document["@context"][1] == {"tracepay": "urn:tracepay:voc:"}
    assert errors(document) == []


def test_a_rapid_test_is_an_inspecting_event_with_sensor_reports(client):
    farm_sale = make_trade(KEY, FARM, 1, [line("cabbage", 10_000, lot="F1")], payer_id="w1",
                           at_ms=1_763_700_000_000)
    _post(client, farm_sale)
    lot_id = f"{farm_sale['trace_code']}-0"
    for body in ({"result": "fail", "inspector": "Market lab", "test_id": "t-fail",
                  "values": {"inhibition_pct": 61.5, "verdict": "positive"},
                  "method": "enzyme inhibition", "tested_at_ms": 1_763_720_000_250},
                 {"result": "pass", "inspector": "Farm QA", "test_id": "t-pass",
                  "tested_at_ms": 1_763_710_000_000}):
        assert client.post("/v1/lots/F1/tests", json=body).status_code == 201
    document = client.get(f"/v1/epcis?lot={lot_id}").json
    tests = {e["bizTransactionList"][0]["bizTransaction"]: e
             for e in document["epcisBody"]["eventList"] if e["bizStep"] == "inspecting"}
    failed = tests["urn:tracepay:rapid_test:t-fail"]
    assert failed["type"] == "ObjectEvent" and failed["action"] == "OBSERVE"
    assert failed["disposition"] == "non_conformant"
    assert failed["bizTransactionList"][0]["type"] == "testres"
    assert failed["eventTime"] == "2025-11-21T10:13:20.250Z"
    assert failed["quantityList"] == [
        {"epcClass": f"https://id.gs1.org/01/06901234567892/10/{lot_id}"}]
    assert failed["sensorElementList"] == [{
        "sensorMetadata": {"time": "2025-11-21T10:13:20.250Z"},
        "sensorReport": [{"type": "urn:tracepay:measurement:inhibition_pct", "value": 61.5},
                         {"type": "urn:tracepay:measurement:verdict",
                          "stringValue": "positive"}]}]
    assert failed["tracepay:inspector"] == "Market lab"
    assert failed["tracepay:method"] == "enzyme inhibition"
    passed = tests["urn:tracepay:rapid_test:t-pass"]
    assert passed["disposition"] == "conformant" and "sensorElementList" not in passed
    assert errors(document) == []


def test_a_downstream_trace_carries_the_upstream_lots_tests(client):
    farm_sale = make_trade(KEY, FARM, 1, [line("cabbage", 10_000, lot="F2")], payer_id="s1",
                           at_ms=1_763_700_000_000)
    shopper_sale = make_trade(KEY, STALL, 1, [line("cabbage", 800)], at_ms=1_763_710_000_000)
    _post(client, farm_sale, shopper_sale)
    assert client.post("/v1/lots/F2/tests", json={"result": "pass", "inspector": "Lab"}
                       ).status_code == 201
    events = client.get(f"/v1/epcis?trace_code={shopper_sale['trace_code']}"
                        ).json["epcisBody"]["eventList"]
    assert [e["bizStep"] for e in events] == ["commissioning", "shipping", "receiving",
                                              "shipping", "inspecting"]


def test_a_test_of_several_lots_is_one_event_in_every_document(client):
    """A label printed on two sales names two lots: the test of the label is the same event
    (same id, both lots) whichever lot's document a partner fetches."""
    sales = [make_trade(KEY, FARM, seq, [line("cabbage", 4_000, lot="F9")], payer_id="w1",
                        at_ms=1_763_700_000_000 + seq * 1_000) for seq in (1, 2)]
    _post(client, *sales)
    assert client.post("/v1/lots/F9/tests", json={"result": "fail", "inspector": "Lab",
                                                   "values": {"ppm": "0.8"}}).status_code == 201
    found = []
    for sale in sales:
        events = client.get(f"/v1/epcis?trace_code={sale['trace_code']}"
                            ).json["epcisBody"]["eventList"]
        [test] = [e for e in events if e["bizStep"] == "inspecting"]
        found.append(test)
    assert found[0] == found[1]
    assert {q["epcClass"].rsplit("/", 1)[1] for q in found[0]["quantityList"]} == {
        f"{sale['trace_code']}-0" for sale in sales}
