"""Channel registry: Alipay and WeChat Pay are wired in only when configured, and a phone
that is neither app gets a choice page. No call leaves loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from test_gateway_support import ServedGateway, platform  # noqa: F401 - fixtures

from aggregation_gateway.channels.audit import redact_body, redact_headers
from service_base.testing import free_port


def _rsa_pair(directory: Path, name: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = directory / f"{name}.pem"
    public = directory / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(private), str(public)


@pytest.fixture
def three_channels(tmp_path: Path, platform):  # noqa: F811
    ours, theirs = _rsa_pair(tmp_path, "alipay-app")
    _, alipay_public = _rsa_pair(tmp_path, "alipay")
    merchant, _ = _rsa_pair(tmp_path, "wechat-merchant")
    _, wechat_platform = _rsa_pair(tmp_path, "wechat-platform")
    dead = f"http://127.0.0.1:{free_port()}"
    with ServedGateway(tmp_path, platform.url, alipay_app_id="2021000000000001",
                       alipay_private_key=ours, alipay_public_key=alipay_public,
                       alipay_gateway_url=f"{dead}/gateway.do", wechatpay_mch_id="1900000001",
                       wechatpay_app_id="wx0000000000000001", wechatpay_private_key=merchant,
                       wechatpay_serial_no="5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
                       wechatpay_api_v3_key="0123456789abcdef0123456789abcdef",
                       wechatpay_platform_public_key=wechat_platform,
                       wechatpay_base_url=dead) as served:
        yield served


def test_configured_channels_and_the_choice_page(three_channels: ServedGateway) -> None:
    gw = three_channels
    assert sorted(gw.gateway.channels) == ["alipay", "sandbox", "wechatpay"]
    assert gw.http.get(f"{gw.url}/healthz").json()["channels"] == [
        "alipay", "sandbox", "wechatpay"]
    terminal = gw.terminal()
    url, _ = terminal.charge()
    page = gw.http.get(url, headers={"Accept": "text/html", "User-Agent": "Mozilla/5.0"})
    assert page.status_code == 200
    assert "channel=alipay" in page.text and "channel=wechatpay" in page.text
    choice = gw.scan(url, **{"User-Agent": "Mozilla/5.0"})
    assert choice.status_code == 300
    assert choice.json()["channels"] == ["alipay", "sandbox", "wechatpay"]
    assert gw.gateway.db.conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 0
    # WeChat's browser goes to WeChat Pay, whose (unreachable) API refuses politely.
    wechat = gw.scan(url, **{"User-Agent": "Mozilla/5.0 MicroMessenger/8.0.47"})
    assert wechat.status_code == 502 and wechat.json()["error"] == "channel_error"
    conn = gw.gateway.db.conn
    assert conn.execute("SELECT COUNT(*) FROM payments").fetchone()[0] == 0
    call = conn.execute("SELECT channel, status, error FROM channel_calls").fetchone()
    assert (call["channel"], call["status"]) == ("wechatpay", None) and call["error"]
    # The shopper's explicit choice (from the choice page) is honoured.
    url2, _ = terminal.charge()
    chosen = gw.http.get(url2 + "?channel=sandbox", headers={"Accept": "application/json"})
    assert chosen.status_code == 200 and chosen.json()["channel"] == "sandbox"
    bad = gw.http.get(url2 + "?channel=paypal", headers={"Accept": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"] == "unknown_channel"


def test_audit_snapshots_remove_secrets() -> None:
    headers = redact_headers({"Authorization": 'WECHATPAY2-SHA256-RSA2048 mchid="1"',
                              "X-Signature": "abc", "Content-Type": "application/json"})
    assert headers == {"Authorization": "***", "X-Signature": "***",
                       "Content-Type": "application/json"}
    body = redact_body(b'{"amount": 1, "nested": {"sign": "s", "ciphertext": "c"}}')
    assert '"sign":"***"' in body and '"ciphertext":"***"' in body and '"amount":1' in body
    form = redact_body(b"app_id=1&sign=abcdef&biz_content=x")
    assert "sign=***" in form and "abcdef" not in form
