"""A market day: two farms -> a wholesaler -> two stalls -> shoppers, with lot splits and
merges. Back and forward traces must add up, a failed rapid test must reach every sale it
touched and no other."""

from __future__ import annotations

import csv
import io

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_bridge.app import create_app
from ledger_bridge.sample_trades import Seller, line, make_trade
from ledger_bridge.service import BridgeService

KEY = Ed25519PrivateKey.generate()
FARM_A = Seller("farm-a", "Shouguang Farm A", "production_base", "dev-fa")
FARM_B = Seller("farm-b", "Dingxi Farm B", "production_base", "dev-fb")
WHOLE = Seller("whole-1", "North Wholesale", "wholesale_market", "dev-w")
STALL_1 = Seller("stall-1", "Li's vegetables", "retail_market", "dev-s1")
STALL_2 = Seller("stall-2", "Wang's greens", "retail_market", "dev-s2")


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    service = BridgeService(tmp_path_factory.mktemp("market") / "bridge",
                            gateway_key=KEY.public_key(), block_timeout_s=0.05)
    client = create_app(service).test_client()
    for party, name, org, payer in (("whole-1", "North Wholesale", "wholesale_market", "w-pay"),
                                    ("stall-1", "Li's vegetables", "retail_market", "s1-pay"),
                                    ("stall-2", "Wang's greens", "retail_market", "s2-pay")):
        assert client.post(f"/v1/parties/{party}/payer-ids",
                           json={"payer_ids": [payer], "name": name, "org": org}).status_code == 200
    trades = {
        "a_to_w": make_trade(KEY, FARM_A, 1, [line("FA-CAB", 100_000, name="大白菜",
                                                   lot="FA-CAB-1", origin="Shouguang")],
                             payer_id="w-pay", at_ms=1_000),
        "b_to_w": make_trade(KEY, FARM_B, 1, [line("baicai", 60_000, lot="FB-CAB-7",
                                                   origin="Dingxi")],
                             payer_id="w-pay", at_ms=1_100),
        "w_to_s1": make_trade(KEY, WHOLE, 1, [line("CAB-01", 70_000)], payer_id="s1-pay",
                              at_ms=2_000),
        "w_to_s2": make_trade(KEY, WHOLE, 2, [line("CAB-01", 50_000)], payer_id="s2-pay",
                              at_ms=2_100),
        "s1_a": make_trade(KEY, STALL_1, 1, [line("cabbage", 1_200)], at_ms=3_000),
        "s1_b": make_trade(KEY, STALL_1, 2, [line("cabbage", 2_500)], at_ms=3_100),
        "s1_c": make_trade(KEY, STALL_1, 3, [line("cabbage", 800)], at_ms=3_200),
        "s2_a": make_trade(KEY, STALL_2, 1, [line("cabbage", 3_000),
                                             line("tomato", 5_000)], at_ms=3_300),
    }
    for trade in trades.values():
        response = client.post("/v1/trades", json=trade)
        assert response.json["status"] == "accepted", response.json
    yield client, service, trades
    service.close()


def lot_of(client, trade, index=0):
    return client.get(f"/v1/trace/{trade['trace_code']}").json["record"]["lines"][index]["lot_id"]


def test_backward_trace_merges_two_farms_and_adds_up(market):
    client, _, trades = market
    body = client.get(f"/v1/trace/{trades['s2_a']['trace_code']}").json
    cabbage_lot = body["record"]["lines"][0]["lot_id"]
    depth1 = [link for link in body["chain"] if link["depth"] == 1]
    assert [(k["for_lot_id"], k["drawn"], k["seller"]["merchant_id"]) for k in depth1] == [
        (cabbage_lot, 3_000, "whole-1")]
    depth2 = [link for link in body["chain"] if link["depth"] == 2]
    assert sorted((k["seller"]["merchant_id"], k["drawn"], k["lot"]) for k in depth2) == [
        ("farm-a", 30_000, "FA-CAB-1"), ("farm-b", 20_000, "FB-CAB-7")]
    # the wholesale lot the stall bought (50 kg) was drawn entirely from the two farms
    assert sum(k["drawn"] for k in depth2) == depth1[0]["amount"] == 50_000
    assert {o["origin"] for o in body["origins"]} == {"Shouguang", "Dingxi"}
    assert {p["leaf"]["record_id"] for p in body["proofs"]} == {
        trades[k]["trade_id"] for k in ("s2_a", "w_to_s2", "a_to_w", "b_to_w")}


def test_selling_what_was_never_bought_is_a_finding(market):
    client, _, trades = market
    findings = client.get("/v1/findings").json["findings"]
    assert [(f["holder"], f["product"], f["unmatched"]) for f in findings] == [
        ("stall-2", "tomato", 5_000)]
    chain = client.get(f"/v1/trace/{trades['s2_a']['trace_code']}").json["chain"]
    tomato_lot = lot_of(client, trades["s2_a"], 1)
    assert not [link for link in chain if link["for_lot_id"] == tomato_lot]


def test_forward_trace_of_a_farm_lot_reaches_every_shopper_and_adds_up(market):
    client, _, trades = market
    body = client.get("/v1/lots/FA-CAB-1").json
    lots = {lot["lot_id"]: lot for lot in body["lots"]}
    for lot in lots.values():
        assert lot["drawn"] + lot["remaining"] == lot["amount"] or lot["holder"].get(
            "kind") == "shopper"
    farm_lot = lot_of(client, trades["a_to_w"])
    assert lots[farm_lot]["drawn"] == 100_000 and lots[farm_lot]["remaining"] == 0
    s1_lot, s2_lot = lot_of(client, trades["w_to_s1"]), lot_of(client, trades["w_to_s2"])
    assert lots[s1_lot]["drawn"] == 4_500 and lots[s1_lot]["remaining"] == 65_500
    assert lots[s2_lot]["drawn"] == 3_000 and lots[s2_lot]["remaining"] == 47_000
    shoppers = sorted((s["trace_code"], s["drawn"]) for s in body["sales"]
                      if s["buyer"] == {"kind": "shopper"})
    assert shoppers == sorted([(trades["s1_a"]["trace_code"], 1_200),
                               (trades["s1_b"]["trace_code"], 2_500),
                               (trades["s1_c"]["trace_code"], 800),
                               (trades["s2_a"]["trace_code"], 3_000)])
    wholesale = sorted((s["buyer"]["merchant_id"], s["drawn"]) for s in body["sales"]
                       if s["depth"] == 1)
    assert wholesale == [("stall-1", 70_000), ("stall-2", 30_000)]


def test_failed_rapid_test_recalls_exactly_the_affected_sales(market):
    client, _, trades = market
    response = client.post("/v1/lots/FB-CAB-7/tests", json={
        "result": "fail", "values": {"organophosphate_inhibition_pct": 62.5},
        "inspector": "inspector-9", "test_id": "rt-0001", "method": "enzyme inhibition"})
    assert response.status_code == 201 and response.json["values"] == {
        "organophosphate_inhibition_pct": "62.5"}
    again = client.post("/v1/lots/FB-CAB-7/tests", json={
        "result": "fail", "inspector": "inspector-9", "test_id": "rt-0001"})
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    recalled = client.get(f"/v1/trace/{trades['s2_a']['trace_code']}").json["recalls"]
    assert [(r["test_id"], r["result"]) for r in recalled] == [("rt-0001", "fail")]
    for key in ("s1_a", "s1_b", "s1_c"):
        assert client.get(f"/v1/trace/{trades[key]['trace_code']}").json["recalls"] == []
    stock = client.get("/v1/stalls/stall-2/stock?since_ms=0").json["lots"]
    assert [len(lot["recalls"]) for lot in stock] == [1]


def test_rapid_test_bad_input(market):
    client, _, _ = market
    cases = [({"result": "maybe", "inspector": "i"}, 422), ({"result": "pass"}, 422),
             ({"result": "pass", "inspector": "i", "values": {"x": [1]}}, 422),
             ({"result": "pass", "inspector": "i", "colour": "red"}, 422)]
    for body, status in cases:
        response = client.post("/v1/lots/FA-CAB-1/tests", json=body)
        assert response.status_code == status and response.json["error"] == "bad_rapid_test"
    missing = client.post("/v1/lots/NO-SUCH/tests", json={"result": "pass", "inspector": "i"})
    assert missing.status_code == 404


def test_recall_csv_is_sortable(market):
    client, _, trades = market
    response = client.get("/v1/lots/FB-CAB-7/recall.csv?sort=drawn")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["drawn"]) for r in rows] == sorted(int(r["drawn"]) for r in rows)
    assert {r["trace_code"] for r in rows} == {trades["w_to_s2"]["trace_code"],
                                               trades["s2_a"]["trace_code"]}
    assert client.get("/v1/lots/FB-CAB-7/recall.csv?sort=nope").status_code == 400


def test_stall_stock_shows_lots_on_hand_with_origins(market):
    client, _, trades = market
    body = client.get("/v1/stalls/stall-1/stock?since_ms=0").json
    assert body["name"] == "Li's vegetables"
    [lot] = body["lots"]
    assert (lot["product"], lot["amount"], lot["remaining"]) == ("cabbage", 70_000, 65_500)
    assert lot["name"] == "CAB-01" and lot["rapid_tests"] == []
    assert lot["bought_from"]["merchant_id"] == "whole-1"
    assert [o["origin"] for o in lot["origins"]] == ["Shouguang"]
    assert client.get("/v1/stalls/stall-1/stock?since_ms=99999999999999").json["lots"] == []


def test_a_business_purchase_is_private_to_both_parties(market):
    client, _, trades = market
    trade_id = trades["w_to_s1"]["trade_id"]
    held = client.get(f"/v1/private/{trade_id}?org=wholesale_market").json["held_by"]
    assert sorted(held) == ["retail_market", "wholesale_market"]
    assert client.get(f"/v1/private/{trade_id}?org=production_base").status_code == 403


def test_ledger_verifies_after_the_day(market):
    _, service, _ = market
    report = service.ledger.verify()
    assert report.ok, report.to_dict()


def test_index_lost_in_a_crash_is_rebuilt_from_the_ledger(tmp_path):
    """The block reached every node but the process died before the index committed:
    the redelivered trade is found on the ledger and its lots and draws come back."""
    service = BridgeService(tmp_path / "bridge", gateway_key=KEY.public_key(),
                            block_timeout_s=0.05)
    try:
        service.store.put_party("stall-1", "Li's vegetables", "retail_market", ["s1-pay"])
        purchase = make_trade(KEY, WHOLE, 1, [line("cabbage", 10_000)], payer_id="s1-pay",
                              at_ms=1_000)
        sale = make_trade(KEY, STALL_1, 1, [line("cabbage", 4_000)], at_ms=2_000)
        assert service.writer.call(lambda: service.intake.trade(purchase)).status == "accepted"
        service.writer.stop()
        with pytest.raises(RuntimeError, match="power cut"), service.store.batch():
            assert service.intake.trade(sale).status == "accepted"
            service.ledger.flush()
            raise RuntimeError("power cut")
        assert service.store.trade(sale["trade_id"]) is None
        assert service.ledger.get(sale["trade_id"]) is not None
        with service.store.batch():
            again = service.intake.trade(sale)
        assert again.status == "duplicate"
        lot = service.store.lots_on_hand("stall-1")[0]
        assert (lot.amount, lot.remaining) == (10_000, 6_000)
        assert service.store.draws_of(lot_of_trade(sale)) == [
            {"source_lot_id": lot.lot_id, "amount": 4_000}]
    finally:
        service.close()


def lot_of_trade(trade, index=0):
    return f"{trade['trace_code']}-{index}"
