"""Hardening: rate limits, key rotation, unknown fields, and secrets kept out of logs."""

from __future__ import annotations

import logging
from pathlib import Path

from test_gateway_support import MANAGER, ServedGateway, Terminal, platform  # noqa: F401

from aggregation_gateway.settings import load_gateway_settings, public_view


def test_scan_and_notify_are_rate_limited(tmp_path: Path, platform) -> None:  # noqa: F811
    # One request an hour: the answers do not depend on how fast we are.
    with ServedGateway(tmp_path, platform.url, scan_limit_per_token="1/hour",
                       notify_limit_per_address="1/hour") as gw:
        terminal = gw.terminal()
        url, _ = terminal.charge()
        answers = [gw.scan(url) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 429, 429]
        assert answers[1].json()["error"] == "rate_limited"
        notes = [gw.http.post(f"{gw.url}/v1/notify/sandbox", data=b"{}", headers={
            "Content-Type": "application/json"}).status_code for _ in range(3)]
        assert notes == [401, 429, 429]


def test_rotation_refuses_old_codes_and_issues_a_new_key(tmp_path: Path, platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as gw:
        terminal = gw.terminal(device_id="dev-rot")
        old_url, _ = terminal.charge()
        rotated = gw.http.post(f"{gw.url}/v1/devices/dev-rot/rotate", auth=MANAGER).json()
        assert rotated["key_version"] == 2
        refused = gw.scan(old_url)
        assert refused.status_code == 403 and refused.json()["error"] == "bad_mac"
        claimed = gw.claim(rotated["enrolment_code"]).json()
        assert claimed["key_version"] == 2 and claimed["device_key"] != terminal.claim[
            "device_key"]
        fresh = Terminal(claimed)
        fresh.seq = terminal.seq
        url, _ = fresh.charge()
        assert gw.scan(url).status_code == 200
        assert gw.http.post(f"{gw.url}/v1/devices/ghost/rotate",
                            auth=MANAGER).status_code == 404


def test_enrolment_input_is_validated(tmp_path: Path, platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as gw:
        post = gw.http.post
        url = f"{gw.url}/v1/devices"
        base = {"merchant_id": "m-1", "merchant_name": "Stall", "org": "retail_market"}
        assert post(url, json=base).status_code == 401
        assert post(url, json=base, auth=(MANAGER[0], "wrong")).status_code == 401
        for bad in ({**base, "org": "bank"}, {**base, "extra": 1}, {**base, "device_id": "a b"},
                    {**base, "merchant_id": " m"}, [base]):
            response = post(url, json=bad, auth=MANAGER)
            assert response.status_code == 400, bad
            assert response.json()["error"] == "invalid_request"
        assert post(url, data="x", auth=MANAGER).status_code == 415
        assert post(url, json={**base, "device_id": "d-1"}, auth=MANAGER).status_code == 201
        again = post(url, json={**base, "device_id": "d-1"}, auth=MANAGER)
        assert again.status_code == 409 and again.json()["error"] == "device_exists"
        assert gw.claim("NOSUCHCODE").status_code == 404


def test_secrets_never_reach_the_logs(tmp_path: Path, platform, caplog) -> None:  # noqa: F811
    caplog.set_level(logging.DEBUG)
    settings = load_gateway_settings(overrides={"mqtt_password": "mqtt-secret-1",
                                                "manager_password": "mgr-secret-2"},
                                     environ={})
    view = public_view(settings)
    assert view["mqtt_password"] == "***" and view["manager_password"] == "***"
    with ServedGateway(tmp_path, platform.url) as gw:
        terminal = gw.terminal()
        url, _ = terminal.charge()
        gw.scan(url)
        master = gw.gateway.master_key.hex()
    text = caplog.text
    for secret in (master, terminal.claim["device_key"], terminal.claim["mqtt"]["password"],
                   MANAGER[1]):
        assert secret not in text


def test_platform_answer_with_a_bad_signature_is_not_acted_on(tmp_path: Path,
                                                              platform) -> None:  # noqa: F811
    """The real platform answers, but not with the key we trust (a man in the middle):
    no order is recorded and the shopper is told to try again."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with ServedGateway(tmp_path, platform.url) as gw:
        terminal = gw.terminal()
        url, _ = terminal.charge()
        gw.gateway.channels["sandbox"].platform_key = Ed25519PrivateKey.generate().public_key()
        response = gw.scan(url)
        assert response.status_code == 502 and response.json()["error"] == "channel_error"
        conn = gw.gateway.db.conn
        assert conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM channel_calls").fetchone()[0] == 1


def test_password_guessing_is_slowed(tmp_path: Path, platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url, login_failures_per_address="10/hour",
                       login_failures_per_account_address="10/hour") as gw:
        url = f"{gw.url}/v1/devices"
        answers = [gw.http.get(url, auth=(MANAGER[0], f"guess-{i}")).status_code
                   for i in range(12)]
        assert answers[:10] == [401] * 10 and answers[10:] == [429, 429]
        # Even the right password waits, from the address that guessed.
        assert gw.http.get(url, auth=MANAGER).status_code == 429


def test_whole_numbers_with_a_fraction_are_integers_other_floats_are_refused(
        tmp_path: Path, platform) -> None:  # noqa: F811
    with ServedGateway(tmp_path, platform.url) as gw:
        terminal = gw.terminal()
        url, _ = terminal.charge()
        payment = gw.scan(url).json()
        from test_gateway_support import pay_at_checkout

        pay_at_checkout(payment["checkout_url"])
        gw.wait_status(payment["payment_id"], "paid")
        refunds = f"{gw.url}/v1/payments/{payment['payment_id']}/refunds"
        half = gw.http.post(refunds, auth=MANAGER, json={"amount_fen": 2.5, "reason": "x",
                                                         "refund_no": "F-1"})
        assert half.status_code == 400 and "float" in half.json()["message"]
        whole = gw.http.post(refunds, auth=MANAGER, json={"amount_fen": 3.0, "reason": "x",
                                                          "refund_no": "F-2"})
        assert whole.status_code == 201 and whole.json()["amount_fen"] == 3
