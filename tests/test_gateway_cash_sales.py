"""Cash sales through the real broker and gateway process: the MACed sale itself is the
evidence, the gateway records a paid ``cash`` payment, publishes the trade the ledger's
contract accepts and tells the terminal; forged and mixed sales get no cash payment."""

from __future__ import annotations

import os
import time

import orjson
import pytest
import requests
from test_gateway_process import GatewayProcess
from test_gateway_support import MANAGER, pay_at_checkout, platform  # noqa: F401 - fixture
from test_terminal_gateway import enrol, gateway, run_terminal  # noqa: F401 - fixture

from aggregation_gateway.database import Database
from ledger_bridge.app import create_app
from ledger_bridge.service import BridgeService
from market_protocol import mac_record
from market_protocol.signing import load_public_key
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal
from pos_terminal.provisioning import save_enrolment
from pos_terminal.tender import settle
from trace_ledger.rules.contract import DeviceRecord, check_trade_contract


def poll(condition, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def gateway_rows(data_dir, sql, *args):
    """Rows of the gateway process's database (SQLite file or the test's PostgreSQL)."""
    db = Database(data_dir, os.environ.get("TRACEPAY_DATABASE_URL", ""), migrate=False)
    try:
        return db.conn.execute(sql, args).fetchall()
    finally:
        db.close()


@pytest.fixture
def terminal(gateway, tmp_path):  # noqa: F811
    issued = enrol(gateway)
    data_dir = tmp_path / "t"
    claim = run_terminal("--data-dir", str(data_dir), "--enrol-code", issued["enrolment_code"],
                         "--gateway-url", gateway["url"], "--drain-timeout", "0")
    assert claim.returncode == 0, claim.stderr
    with Terminal.open(data_dir) as term:
        term.start()
        yield term


def cart_of():
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[0], weight_g=4290)  # 12.87
    return cart


def test_a_cash_sale_becomes_a_paid_cash_payment_and_a_trade_the_contract_accepts(
        gateway, terminal):  # noqa: F811
    cart = cart_of()
    charged = terminal.charge(cart, tender=settle(cart.total_fen, rounding="jiao",
                                                  all_cash=True, received_fen=2000))
    # The gateway's own MACed result reaches the terminal over MQTT, with its payment id.
    stored = poll(lambda: (s := terminal.sale(charged.sale_id)).payment_id and s,
                  what="the gateway's cash result")
    assert (stored.payment_status, stored.payment_channel) == ("paid", "cash")
    assert stored.payment_id.startswith("c")
    [payment] = gateway_rows(gateway["data_dir"], "SELECT * FROM payments WHERE device_id = ? AND "
                             "order_no = ?", terminal.device_id, charged.seq)
    assert (payment["channel"], payment["status"], payment["amount_fen"]) == \
        ("cash", "paid", 1280)
    assert payment["paid_at_ms"] == charged.sale["created_at_ms"]
    [event] = gateway_rows(gateway["data_dir"], "SELECT * FROM payment_events WHERE payment_id = ?",
                           payment["payment_id"])
    assert (event["from_status"], event["to_status"], event["source"]) == \
        ("none", "paid", "cash_sale")
    [row] = poll(lambda: gateway_rows(gateway["data_dir"], "SELECT payload FROM outbox WHERE kind = "
                                      "'trade' AND record_id = ?", charged.sale_id),
                 what="the trade")
    trade = orjson.loads(row["payload"])
    assert trade["payment"]["channel"] == "cash"
    assert trade["payment"]["amount_fen"] == trade["payment"]["cash_fen"] == 1280
    assert trade["sale"]["tender"]["rounding_fen"] == 7
    key = load_public_key(requests.get(f"{gateway['url']}/v1/keys", timeout=10)
                          .json()["gateway_public_key_pem"].encode())
    device = DeviceRecord(terminal.device_id, trade["seller"]["merchant_id"], 0)
    verdict = check_trade_contract(trade, key, device)
    assert verdict.ok, verdict.reason
    # ... and the bridge takes it into the ledger like any other trade.
    bridge = BridgeService(gateway["data_dir"].parent / "bridge", gateway_key=key,
                           block_timeout_s=0.05, public_url="https://trace.test")
    try:
        client = create_app(bridge).test_client()
        taken = client.post("/v1/trades", json=trade)
        assert taken.status_code == 200 and taken.json["status"] == "accepted", taken.json
        traced = client.get(f"/v1/trace/{trade['trace_code']}")
        assert traced.status_code == 200
        assert traced.json["record"]["lines"][0]["weight_g"] == 4290
    finally:
        bridge.close()
    # No platform holds cash: a refund request is refused for good, not retried.
    answer = terminal.request_refund(charged.sale_id, 100, "bruised")
    assert answer["state"] == "refused"
    assert orjson.loads(answer["answer"])["error"] == "not_refundable"
    assert gateway_rows(gateway["data_dir"], "SELECT 1 FROM refunds") == []


def test_a_forged_cash_sale_and_a_mixed_sale_get_no_cash_payment(gateway, terminal):  # noqa: F811
    cart = cart_of()
    mixed = terminal.charge(cart, tender=settle(cart.total_fen, cash_fen=500))

    def forged(seq: int) -> dict:
        # A sale claiming to be all cash, MACed with a key that is not the device's.
        sale = dict(mixed.sale, seq=seq, sale_id=f"{terminal.device_id}.{seq}.deadbeef",
                    tender={"cash_fen": 1287, "rounding_fen": 0, "received_fen": None})
        sale["mac"] = mac_record(sale, b"not-the-device-key" * 2)
        return sale

    forged_sale = terminal.outbox.add(forged)
    terminal.uplink.wake()
    poll(lambda: gateway_rows(gateway["data_dir"], "SELECT 1 FROM rejected_messages WHERE reason LIKE "
                              "'%MAC%'"), what="the forged sale's rejection")
    poll(lambda: gateway_rows(gateway["data_dir"], "SELECT 1 FROM sales WHERE sale_id = ?",
                              mixed.sale_id), what="the mixed sale")
    assert gateway_rows(gateway["data_dir"], "SELECT 1 FROM sales WHERE sale_id = ?",
                        forged_sale["sale_id"]) == []
    assert gateway_rows(gateway["data_dir"], "SELECT * FROM payments WHERE channel = 'cash'") == []


def test_a_mixed_sale_pays_the_rest_by_qr_and_its_trade_counts_both(tmp_path, platform,  # noqa: F811
                                                                    mqtt_broker):
    process = GatewayProcess(tmp_path, platform.url, mqtt_broker).start()
    try:
        http = requests.Session()
        http.trust_env = False
        issued = http.post(f"{process.url}/v1/devices", auth=MANAGER, timeout=10,
                           json={"merchant_id": "stall-8", "merchant_name": "混合摊", "org": "retail_market"})
        assert issued.status_code == 201, issued.text
        claim = http.post(f"{process.url}/v1/enrolments/{issued.json()['enrolment_code']}/claim")
        save_enrolment(tmp_path / "t", claim.json())
        with Terminal.open(tmp_path / "t") as term:
            term.start()
            cart = cart_of()
            charged = term.charge(cart, tender=settle(cart.total_fen, cash_fen=500,
                                                      received_fen=1000))
            payment = http.get(charged.qr_url, headers={"Accept": "application/json"},
                               timeout=10).json()
            assert payment["amount_fen"] == 787
            pay_at_checkout(payment["checkout_url"])
            stored = poll(lambda: (s := term.sale(charged.sale_id)).payment_status == "paid"
                          and s, what="the QR part paid")
            assert stored.payment_channel == "sandbox"
            [row] = poll(lambda: gateway_rows(process.data_dir, "SELECT payload "
                                              "FROM outbox WHERE kind = 'trade' AND "
                                              "record_id = ?", charged.sale_id),
                         what="the trade")
        trade = orjson.loads(row["payload"])
        assert trade["payment"]["channel"] == "sandbox"
        assert (trade["payment"]["amount_fen"], trade["payment"]["cash_fen"]) == (1287, 500)
        key = load_public_key(http.get(f"{process.url}/v1/keys", timeout=10)
                              .json()["gateway_public_key_pem"].encode())
        verdict = check_trade_contract(trade, key, DeviceRecord(
            trade["sale"]["device_id"], "stall-8", 0))
        assert verdict.ok, verdict.reason
    finally:
        process.process.stop()


def test_cash_is_kept_out_of_the_platform_settlement_and_reconciliation(tmp_path,
                                                                        platform):  # noqa: F811
    from datetime import UTC, datetime

    from test_gateway_support import ServedGateway

    from aggregation_gateway.sales_intake import accept_sale
    from aggregation_gateway.settlement_store import our_lines, vendor_day
    from market_protocol import canonical_json
    from market_protocol.topics import sales_topic

    with ServedGateway(tmp_path, platform.url) as gw:
        seller = gw.terminal(merchant_id="stall-c", device_id="dev-cash")
        url, sale = seller.charge()
        payment = gw.scan(url).json()
        pay_at_checkout(payment["checkout_url"])
        gw.wait_status(payment["payment_id"], "paid")
        _, cash_sale = seller.charge()
        cash_sale["tender"] = {"cash_fen": cash_sale["total_fen"], "rounding_fen": 0}
        cash_sale["created_at_ms"] = int(time.time() * 1000)
        cash_sale["mac"] = mac_record(cash_sale, seller.key)
        for record in (sale, cash_sale):
            assert accept_sale(gw.gateway.payments, sales_topic(seller.device_id),
                               canonical_json.dumps(record)) == "stored"
        assert gw.gateway.db.conn.execute("SELECT 1 FROM payments WHERE channel = 'cash' "
                                          "AND status = 'paid'").fetchall() != []
        today = datetime.now(UTC).date()
        [day] = vendor_day(gw.gateway, today)
        assert day.gross_fen == sale["total_fen"]  # the QR sale only
        assert [key for key in our_lines(gw.gateway, today)] == \
            [f"payment:{payment['payment_id']}"]
