"""EPCIS 2.0 export: event shape, KGM quantities, owning parties, content-hash event ids."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_bridge.app import create_app
from ledger_bridge.epcis import event_hash_id, events_for_trade
from ledger_bridge.sample_trades import Seller, line, make_trade
from ledger_bridge.service import BridgeService

KEY = Ed25519PrivateKey.generate()
FARM = Seller("farm-a", "Farm A", "production_base", "dev-fa")
STALL = Seller("stall-1", "Stall 1", "retail_market", "dev-s1")


@pytest.fixture
def client(tmp_path):
    service = BridgeService(tmp_path / "b", gateway_key=KEY.public_key(), block_timeout_s=0.05)
    client = create_app(service).test_client()
    client.post("/v1/parties/stall-1/payer-ids",
                json={"payer_ids": ["s1"], "name": "Stall 1", "org": "retail_market"})
    client.post("/v1/catalogue", json={"code": "cabbage", "name": "Chinese cabbage",
                                       "synonyms": ["大白菜", "CAB-01"],
                                       "gtin": "6901234567892"})
    yield client
    service.close()


def test_trade_chain_exports_as_transaction_events(client):
    farm_sale = make_trade(KEY, FARM, 1, [line("CAB-01", 12_345, lot="FA-1"),
                                          line("tofu", unit="piece", quantity=3,
                                               unit_price_fen=350)],
                           payer_id="s1", at_ms=1_763_700_000_123)
    shopper_sale = make_trade(KEY, STALL, 1, [line("cabbage", 1_500)], at_ms=1_763_700_100_000)
    for trade in (farm_sale, shopper_sale):
        assert client.post("/v1/trades", json=trade).json["status"] == "accepted"
    response = client.get(f"/v1/epcis?trace_code={shopper_sale['trace_code']}")
    assert response.status_code == 200 and response.mimetype == "application/ld+json"
    document = response.json
    assert document["type"] == "EPCISDocument" and document["schemaVersion"] == "2.0"
    everything = document["epcisBody"]["eventList"]
    assert [(e["type"], e["bizStep"]) for e in everything] == [
        ("ObjectEvent", "commissioning"), ("ObjectEvent", "commissioning"),
        ("TransactionEvent", "shipping"), ("TransactionEvent", "receiving"),
        ("TransactionEvent", "shipping")]
    events = everything[2:]
    shipping = events[0]
    assert shipping["eventTime"] == "2025-11-21T04:40:00.123Z"
    assert shipping["sourceList"] == [{"type": "owning_party",
                                       "source": "urn:tracepay:party:farm-a"}]
    assert shipping["destinationList"] == [{"type": "owning_party",
                                            "destination": "urn:tracepay:party:stall-1"}]
    cabbage, tofu = shipping["quantityList"]
    assert cabbage["quantity"] == 12.345 and cabbage["uom"] == "KGM"
    assert cabbage["epcClass"].startswith("https://id.gs1.org/01/06901234567892/10/")
    assert tofu == {"epcClass": tofu["epcClass"], "quantity": 3}
    assert tofu["epcClass"].startswith("urn:tracepay:lot:tofu:")
    assert "destinationList" not in events[2]  # a shopper is not an owning party we name
    for event in events:
        assert event["eventID"].startswith("ni:///sha-256;")
        assert event["eventID"].endswith("?ver=CBV2.0")
        assert event_hash_id({k: v for k, v in event.items() if k != "eventID"}) == \
            event["eventID"]
    assert len({e["eventID"] for e in everything}) == 5


def test_event_id_depends_on_content_not_key_order():
    record = {"trade_id": "t1", "trace_code": "abc", "sold_at_ms": 1_000,
              "confirmed_at_ms": 2_000,
              "seller": {"merchant_id": "a", "name": "A", "org": "production_base"},
              "buyer": {"kind": "shopper"},
              "lines": [{"product": "cabbage", "lot_id": "abc-0", "measure": "g",
                         "amount": 1_000}]}
    [event] = events_for_trade(record)
    reordered = dict(reversed(list(event.items())))
    assert event_hash_id(reordered) == event["eventID"]
    heavier = {**record, "lines": [{**record["lines"][0], "amount": 1_001}]}
    assert events_for_trade(heavier)[0]["eventID"] != event["eventID"]


def test_lot_export_covers_upstream_and_downstream(client):
    farm_sale = make_trade(KEY, FARM, 1, [line("CAB-01", 10_000, lot="FA-1")], payer_id="s1",
                           at_ms=1_000)
    shopper_sale = make_trade(KEY, STALL, 1, [line("cabbage", 1_000)], at_ms=2_000)
    for trade in (farm_sale, shopper_sale):
        client.post("/v1/trades", json=trade)
    events = client.get("/v1/epcis?lot=FA-1").json["epcisBody"]["eventList"]
    trades = {e["bizTransactionList"][0]["bizTransaction"] for e in events
              if e["type"] == "TransactionEvent"}
    assert trades == {f"urn:tracepay:trade:{farm_sale['trade_id']}",
                      f"urn:tracepay:trade:{shopper_sale['trade_id']}"}
    assert client.get("/v1/epcis?lot=FA-1&trace_code=x").status_code == 400
