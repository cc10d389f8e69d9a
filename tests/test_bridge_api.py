"""The bridge's HTTP API through its app factory: intake, trace, proofs, bad input."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_bridge.app import create_app
from ledger_bridge.sample_trades import Seller, line, make_trade
from ledger_bridge.service import BridgeService
from market_protocol import merkle, signing

KEY = Ed25519PrivateKey.generate()
FARM = Seller("farm-1", "Green Farm", "production_base", "dev-farm")
STALL = Seller("stall-1", "Li's vegetables", "retail_market", "dev-stall")


@pytest.fixture
def service(tmp_path):
    svc = BridgeService(tmp_path / "bridge", gateway_key=KEY.public_key(), block_timeout_s=0.05,
                        public_url="https://trace.test")
    yield svc
    svc.close()


@pytest.fixture
def client(service):
    return create_app(service).test_client()


def stall_sale(seq=1, payer="alipay:2088-shopper", **kwargs):
    return make_trade(KEY, STALL, seq, [line("cabbage", 1250, unit="500g", unit_price_fen=150,
                                             lot="STALL-LOT-1")], payer_id=payer, **kwargs)


def test_post_trade_is_idempotent_by_trade_id(client, service):
    trade = stall_sale()
    first = client.post("/v1/trades", json=trade)
    assert first.status_code == 200 and first.json["status"] == "accepted"
    again = client.post("/v1/trades", json=trade)
    assert again.status_code == 200 and again.json["status"] == "duplicate"
    assert service.store.counts()["trades"] == 1
    assert client.get("/v1/head").json["trades"] == 1


def test_trace_shows_the_public_view_and_a_proof_that_checks(client):
    trade = stall_sale()
    client.post("/v1/trades", json=trade)
    body = client.get(f"/v1/trace/{trade['trace_code']}").json
    record = body["record"]
    assert record["seller"]["name"] == "Li's vegetables"
    assert record["lines"][0]["weight_g"] == 1250 and record["lines"][0]["product"] == "cabbage"
    text = str(body)
    assert "2088-shopper" not in text and "unit_price_fen" not in text
    assert "amount_fen" not in text
    proof = body["proofs"][0]
    assert hashlib.sha256(proof["record_canonical"].encode()).hexdigest() == proof["record_hash"]
    leaf = merkle.leaf_hash(_leaf_bytes(proof["leaf"]))
    root = merkle.root_from_inclusion(proof["leaf_index"], proof["tree_size"], leaf,
                                      [bytes.fromhex(h) for h in proof["audit_path"]])
    assert root.hex() == proof["block"]["header"]["merkle_root"]
    keys = client.get("/v1/keys").json["keys"]
    orderer = [s for s in proof["block"]["signatures"] if s["signer"] == "orderer"][0]
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from market_protocol import canonical_json
    public = Ed25519PublicKey.from_public_bytes(signing.unb64u(keys["orderer"]))
    assert signing.verify(public, canonical_json.dumps(proof["block"]["header"]), orderer["sig"])


def _leaf_bytes(leaf):
    from market_protocol import canonical_json
    return canonical_json.dumps({"kind": leaf["kind"], "record_id": leaf["record_id"],
                                 "record_hash": leaf["record_hash"],
                                 "trace_keys": sorted(leaf["trace_keys"])})


def test_private_record_is_held_only_by_the_parties_nodes(client, service):
    trade = stall_sale()
    client.post("/v1/trades", json=trade)
    service.ledger.flush()
    private = service.ledger.get(f"{trade['trade_id']}/private")
    assert private.held_by == ("retail_market",)
    assert private.record["trade"]["payment"]["payer_id"] == "alipay:2088-shopper"
    assert service.ledger.get(f"{trade['trade_id']}/private", "production_base").record is None
    public = service.ledger.get(trade["trade_id"])
    assert set(public.held_by) == {"production_base", "wholesale_market", "retail_market"}
    assert client.get(f"/v1/proofs/{trade['trade_id']}/private").status_code == 404


def test_payer_hash_is_salted_per_trade(client, service):
    one, two = stall_sale(1), stall_sale(2)
    client.post("/v1/trades", json=one)
    client.post("/v1/trades", json=two)
    hashes = {service.store.trade(t["trade_id"])["payer_hash"] for t in (one, two)}
    assert len(hashes) == 2
    plain = hashlib.sha256(b"alipay:2088-shopper").hexdigest()
    assert plain not in hashes


@pytest.mark.parametrize("mutate, status, code", [
    (lambda t: t.update(gateway_sig="A" * 86), 422, "bad_signature"),
    (lambda t: t["seller"].update(name="Forged"), 422, "bad_signature"),
    (lambda t: t.pop("payment"), 400, "malformed_trade"),
    (lambda t: t.update(extra=1), 400, "malformed_trade"),
])
def test_bad_trades_are_refused_with_a_reason_and_recorded_as_rejected(client, service, mutate,
                                                                        status, code):
    trade = stall_sale()
    mutate(trade)
    response = client.post("/v1/trades", json=trade)
    assert response.status_code == status
    assert response.json["error"] == code and response.json["message"]
    record_id = response.json["record_id"]
    service.ledger.flush()
    stored = service.ledger.get(record_id)
    assert stored.kind == "rejected" and stored.record["code"] == code
    assert "2088-shopper" not in str(stored.record)
    assert service.store.counts() == {**service.store.counts(), "rejected": 1, "trades": 0}
    again = client.post("/v1/trades", json=trade)
    assert again.json["record_id"] == record_id and service.store.counts()["rejected"] == 1


def test_a_forged_trade_does_not_block_the_genuine_one(client):
    genuine = stall_sale()
    forged = {**genuine, "gateway_sig": "B" * 86}
    assert client.post("/v1/trades", json=forged).status_code == 422
    assert client.post("/v1/trades", json=genuine).json["status"] == "accepted"


@pytest.mark.parametrize("body, code", [
    (b"", "malformed_json"), (b"{not json", "malformed_json"), (b"[1, 2]", "malformed_json"),
    (b'{"a": 1.5}', "malformed_trade"),
])
def test_malformed_bodies_get_400(client, body, code):
    response = client.post("/v1/trades", data=body, content_type="application/json")
    assert response.status_code == 400 and response.json["error"] == code


def test_device_registry_rejects_a_sale_before_enrolment_or_after_revocation(client):
    response = client.post("/v1/devices", json={"device_id": "dev-stall",
                                                "merchant_id": "stall-1",
                                                "enrolled_at_ms": 1_000,
                                                "revoked_at_ms": 1_763_700_000_000})
    assert response.status_code == 201
    refused = client.post("/v1/trades", json=stall_sale())
    assert refused.status_code == 422 and refused.json["error"] == "device_revoked"
    other = make_trade(KEY, Seller("stall-2", "Other", "retail_market", "dev-stall"), 1,
                       [line("tomato", 500)], at_ms=2_000)
    assert client.post("/v1/trades", json=other).json["error"] == "device_merchant_mismatch"


def test_first_trade_enrols_an_unknown_device_and_earlier_sales_still_count(client):
    client.post("/v1/trades", json=stall_sale(2, at_ms=5_000))
    assert client.get("/v1/devices/dev-stall").json == {
        "device_id": "dev-stall", "merchant_id": "stall-1", "enrolled_at_ms": 0,
        "revoked_at_ms": None}
    # store-and-forward: the device's first sale arrives after its second
    late = client.post("/v1/trades", json=stall_sale(1, at_ms=4_000))
    assert late.status_code == 200 and late.json["status"] == "accepted"
    other = make_trade(KEY, Seller("stall-2", "Other", "retail_market", "dev-stall"), 5,
                       [line("tomato", 500)], at_ms=6_000)
    assert client.post("/v1/trades", json=other).json["error"] == "device_merchant_mismatch"
    assert client.get("/v1/devices/nope").status_code == 404


def test_a_rejected_trade_is_accepted_once_its_device_is_enrolled(client, service):
    client.post("/v1/devices", json={"device_id": "dev-stall", "merchant_id": "stall-1",
                                     "enrolled_at_ms": 1_763_800_000_000})
    trade = stall_sale()
    assert client.post("/v1/trades", json=trade).json["error"] == "device_not_enrolled"
    client.post("/v1/devices", json={"device_id": "dev-stall", "merchant_id": "stall-1",
                                     "enrolled_at_ms": 1_000})
    assert client.post("/v1/trades", json=trade).json["status"] == "accepted"
    assert service.store.counts()["rejected"] == 1


@pytest.mark.parametrize("path, status, code", [
    ("/v1/trace/doesnotexist", 404, "unknown_trace_code"),
    ("/v1/blocks/999", 404, "unknown_block"),
    ("/v1/lots/NOPE", 404, "unknown_lot"),
    ("/v1/lots/NOPE/recall.csv", 404, "unknown_lot"),
    ("/01/123/10/L1", 400, "bad_digital_link"),
    ("/v1/epcis", 400, "bad_parameter"),
    ("/v1/epcis?trace_code=nope", 404, "unknown_trace_code"),
    ("/v1/findings?limit=0", 400, "bad_parameter"),
    ("/v1/proofs/unknown", 404, "unknown_record"),
    ("/v1/stalls/bad%20id/stock", 400, "bad_merchant_id"),
    ("/v1/nothing", 404, "not_found"),
])
def test_bad_reads_are_clear_4xx(client, path, status, code):
    response = client.get(path)
    assert response.status_code == status and response.json["error"] == code


def test_wrong_method_is_405_json(client):
    response = client.get("/v1/trades")
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"


def test_health_counts_and_openapi(client):
    client.post("/v1/trades", json=stall_sale())
    health = client.get("/healthz").json
    assert health["status"] == "ok" and health["trades"] == 1 and health["devices"] == 1
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.1")
    for path in ("/v1/trace/{code}", "/v1/trades", "/v1/lots/{lot}/tests", "/v1/epcis",
                 "/v1/stalls/{merchant_id}/stock", "/v1/parties/{merchant_id}/payer-ids"):
        assert path in spec["paths"]


def test_consistency_proof_between_ledger_sizes(client, service):
    for seq in (1, 2, 3):
        client.post("/v1/trades", json=stall_sale(seq))
    height = client.get("/v1/head").json["height"]
    assert height == 3  # one writer batch, one block each when posted one by one
    body = client.get("/v1/consistency?old=1&new=3").json
    assert merkle.verify_consistency(1, 3, bytes.fromhex(body["old_root"]),
                                     bytes.fromhex(body["new_root"]),
                                     [bytes.fromhex(h) for h in body["proof"]])
    assert client.get("/v1/consistency?old=4").status_code == 400


def test_admin_token_guards_registrations(tmp_path):
    svc = BridgeService(tmp_path / "b", gateway_key=KEY.public_key(), admin_token="s3cret")
    try:
        client = create_app(svc).test_client()
        body = {"payer_ids": ["p1"], "name": "Wholesale", "org": "wholesale_market"}
        assert client.post("/v1/parties/w1/payer-ids", json=body).status_code == 401
        ok = client.post("/v1/parties/w1/payer-ids", json=body,
                         headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json["payer_ids"] == 1
    finally:
        svc.close()


def test_payer_id_cannot_belong_to_two_parties(client):
    body = {"payer_ids": ["p1"], "name": "A", "org": "wholesale_market"}
    assert client.post("/v1/parties/a/payer-ids", json=body).status_code == 200
    taken = client.post("/v1/parties/b/payer-ids", json={**body, "name": "B"})
    assert taken.status_code == 409 and taken.json["error"] == "payer_id_taken"
    bad = client.post("/v1/parties/c/payer-ids", json={"payer_ids": [], "name": "C",
                                                       "org": "retail_market"})
    assert bad.status_code == 422 and bad.json["error"] == "bad_payer_ids"
    bad_org = client.post("/v1/parties/c/payer-ids", json={"payer_ids": ["x"], "name": "C",
                                                           "org": "bank"})
    assert bad_org.status_code == 422 and bad_org.json["error"] == "bad_org"


def test_catalogue_synonyms_drive_matching(client):
    added = client.post("/v1/catalogue", json={"code": "kale", "name": "Kale",
                                               "synonyms": ["KL-9"], "gtin": "6901234567892"})
    assert added.status_code == 201 and added.json["gtin"] == "06901234567892"
    clash = client.post("/v1/catalogue", json={"code": "kale2", "name": "Kale 2",
                                               "synonyms": ["KL-9"]})
    assert clash.status_code == 422 and "already names" in clash.json["message"]
    trade = make_trade(KEY, STALL, 9, [line("KL-9", 800)])
    client.post("/v1/trades", json=trade)
    body = client.get(f"/v1/trace/{trade['trace_code']}").json
    assert body["record"]["lines"][0]["product"] == "kale"
    lot_id = body["record"]["lines"][0]["lot_id"]
    assert body["lot_urls"][lot_id] == f"https://trace.test/01/06901234567892/10/{lot_id}"
    assert client.get(f"/01/06901234567892/10/{lot_id}").json["lot_ids"] == [lot_id]
    assert client.get(f"/01/00000000000000/10/{lot_id}").status_code == 404


def test_private_record_reaches_only_parties_to_the_trade(client):
    trade = stall_sale()
    client.post("/v1/trades", json=trade)
    own = client.get(f"/v1/private/{trade['trade_id']}?org=retail_market")
    assert own.status_code == 200 and own.json["held_by"] == ["retail_market"]
    assert own.json["record"]["trade"]["payment"]["payer_id"] == "alipay:2088-shopper"
    assert own.json["record"]["trade"]["sale"]["lines"][0]["unit_price_fen"] == 150
    other = client.get(f"/v1/private/{trade['trade_id']}?org=production_base")
    assert other.status_code == 403 and other.json["error"] == "not_a_party"
    assert "2088" not in other.get_data(as_text=True)
    assert client.get(f"/v1/private/{trade['trade_id']}?org=bank").status_code == 400
    assert client.get("/v1/private/nope?org=retail_market").status_code == 404


def test_trades_token_keeps_strangers_off_the_ledger(tmp_path):
    svc = BridgeService(tmp_path / "t", gateway_key=KEY.public_key(), trades_token="feed")
    try:
        client = create_app(svc).test_client()
        refused = client.post("/v1/trades", json={"junk": 1})
        assert refused.status_code == 401 and refused.json["error"] == "unauthorized"
        assert svc.store.counts()["rejected"] == 0
        ok = client.post("/v1/trades", json=stall_sale(),
                         headers={"Authorization": "Bearer feed"})
        assert ok.status_code == 200 and ok.json["status"] == "accepted"
    finally:
        svc.close()
