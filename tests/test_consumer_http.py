"""The consumer app's HTTP surface without its upstreams: input checks, errors, languages.

Upstreams here point at a loopback port where nothing listens, which is a real condition
(the bridge restarting, a dropped market network), not a mock.
"""

from __future__ import annotations

import re

import pytest

from consumer_app import create_app
from consumer_app.meta import openapi_document
from service_base.testing import free_port

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
PROGRAM = {"Accept": "application/json"}


@pytest.fixture
def client():
    dead = f"http://127.0.0.1:{free_port()}"
    app = create_app({"gateway_url": dead, "bridge_url": dead, "upstream_timeout": 2})
    return app.test_client()


def test_healthz_and_openapi(client):
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.get_json()["status"] == "ok"
    assert health.get_json()["service"] == "consumer"
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.1")
    for path in ("/pay/{payment_id}", "/receipt/{payment_id}", "/trace/{code}",
                 "/stall/{merchant_id}", "/scan", "/healthz", "/openapi.json"):
        assert path in doc["paths"], path
    assert doc == openapi_document()


@pytest.mark.parametrize("path", [
    "/trace/-abc", "/trace/a%20b", "/trace/" + "a" * 65, "/trace/%E4%B8%AD",
    "/receipt/pay%3Bdrop", "/receipt/_x", "/pay/a%2Cb", "/pay/" + "9" * 70,
    "/stall/%3Cscript%3E", "/stall/.hidden",
])
def test_malformed_ids_are_a_json_400_that_names_the_field(client, path):
    response = client.get(path)
    assert response.status_code == 400, response.data
    body = response.get_json()
    assert body["error"].startswith("malformed_")
    assert "letters, digits" in body["message"]


def test_malformed_id_from_a_browser_is_a_friendly_page(client):
    response = client.get("/trace/-abc?lang=en", headers=BROWSER)
    assert response.status_code == 400
    assert response.content_type.startswith("text/html")
    assert b"Invalid request" in response.data
    assert b'data-error="malformed_trace_code"' in response.data
    assert b"Traceback" not in response.data


def test_trace_form_redirects_and_refuses_blank(client):
    assert client.get("/trace").status_code == 400
    assert client.get("/trace?code=").get_json()["error"] == "missing_code"
    assert client.get("/trace?code=bad%20code").status_code == 400
    response = client.get("/trace?code=abcdefghijkl&lang=en")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/trace/abcdefghijkl?lang=en")


def test_unknown_page_is_friendly_for_browsers_and_json_for_programs(client):
    page = client.get("/no/such/page", headers=BROWSER)
    assert page.status_code == 404 and page.content_type.startswith("text/html")
    assert "没有这个页面".encode() in page.data
    assert client.get("/no/such/page", headers=PROGRAM).get_json()["error"] == "not_found"


def test_wrong_method_is_405_with_allow(client):
    response = client.post("/trace/abcdefghijkl", headers=PROGRAM)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.get_json()["error"] == "method_not_allowed"


@pytest.mark.parametrize(("path", "code"), [
    ("/trace/abcdefghijkl", "bridge_unavailable"),
    ("/stall/stall-7", "bridge_unavailable"),
    ("/receipt/pay-1", "gateway_unavailable"),
    ("/pay/pay-1", "gateway_unavailable"),
])
def test_unreachable_upstream_is_503_with_a_retry(client, path, code):
    api = client.get(path, headers=PROGRAM)
    assert api.status_code == 503
    assert api.get_json()["error"] == code
    page = client.get(path + "?lang=en", headers=BROWSER)
    assert page.status_code == 503
    assert b"Temporarily unavailable" in page.data and b"Refresh" in page.data


def test_language_switch_and_accept_language(client):
    zh = client.get("/scan")
    assert b'lang="zh-CN"' in zh.data and "扫码".encode() in zh.data
    assert b'href="/scan?lang=en"' in zh.data
    en = client.get("/scan", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert b'lang="en"' in en.data and b"Start camera" in en.data
    assert b'href="/scan?lang=zh"' in en.data
    forced = client.get("/scan?lang=zh", headers={"Accept-Language": "en"})
    assert "打开相机".encode() in forced.data
    assert "Accept-Language" in en.headers["Vary"]


def test_scan_page_uses_only_local_assets(client):
    html = client.get("/scan").get_data(as_text=True)
    assert "/static/vendor/jsQR.min.js" in html and "/static/scan.js" in html
    assert not re.search(r'(src|href|action)="(https?:)?//', html), "an asset is not local"
    script = client.get("/static/vendor/jsQR.min.js")
    assert script.status_code == 200 and b"jsQR" in script.data
    assert client.get("/static/vendor/jsQR.LICENSE").status_code == 200


def test_home_goes_to_scan(client):
    response = client.get("/?lang=en")
    assert response.status_code == 302 and response.headers["Location"].endswith("/scan?lang=en")


def test_settings_are_checked_at_start():
    from market_protocol.settings import SettingsError

    with pytest.raises(SettingsError, match="gateway_url"):
        create_app({"gateway_url": "ftp://x"})
    with pytest.raises(SettingsError, match="upstream_timeout"):
        create_app({"upstream_timeout": 0})
    with pytest.raises(SettingsError, match="unknown time zone"):
        create_app({"timezone": "Mars/Olympus"})
    with pytest.raises(SettingsError, match="default_lang"):
        create_app({"default_lang": "fr"})
    with pytest.raises(SettingsError, match="ledger_keys_file"):
        create_app({"ledger_keys_file": "/no/such/keys.json"})


def test_scan_page_with_its_scripts_stays_within_200_kb(client):
    html = client.get("/scan").data
    total = len(html)
    for src in re.findall(rb'src="(/static/[^"]+)"', html):
        asset = client.get(src.decode())
        assert asset.status_code == 200
        total += len(asset.data)
    assert total <= 200 * 1024, total


def test_every_setting_and_option_is_documented():
    from pathlib import Path

    from consumer_app.cli import consumer
    from consumer_app.settings import SETTINGS

    docs = (Path(__file__).resolve().parents[1] / "docs" / "consumer.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.name}`" in docs, setting.name
    for option in consumer.params:
        for flag in option.opts:
            assert f"`{flag}`" in docs, flag


def test_cli_help_has_an_example_and_bad_settings_are_usage_errors():
    from click.testing import CliRunner

    from consumer_app.cli import consumer

    runner = CliRunner()
    help_text = runner.invoke(consumer, ["--help"]).output
    assert "Example:" in help_text and "--bridge-url" in help_text
    bad_url = runner.invoke(consumer, ["--gateway-url", "ftp://x"])
    assert bad_url.exit_code == 2 and "gateway_url" in bad_url.output
    bad_workers = runner.invoke(consumer, ["--workers", "0"])
    assert bad_workers.exit_code == 2 and "--workers" in bad_workers.output


def test_service_worker_is_served_from_the_root_uncached(client):
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.content_type.startswith("text/javascript")
    assert response.headers["Cache-Control"] == "no-cache"
    assert b'addEventListener("fetch"' in response.data


def test_pages_carry_a_same_origin_content_security_policy(client):
    import base64
    import hashlib

    response = client.get("/scan")
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    inline = re.findall(r"<script>(.*?)</script>", response.get_data(as_text=True), re.S)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in policy
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pinned_keys_file_must_hold_raw_keys(tmp_path):
    from market_protocol.settings import SettingsError

    empty = tmp_path / "keys.json"
    empty.write_text('{"orderer": "-----BEGIN PUBLIC KEY-----"}')
    with pytest.raises(SettingsError, match="holds no raw"):
        create_app({"ledger_keys_file": str(empty)})
    good = tmp_path / "good.json"
    good.write_text('{"keys": {"orderer": "%s"}}' % ("A" * 43))
    assert create_app({"ledger_keys_file": str(good)}).config["PINNED_KEYS"] == {
        "orderer": "A" * 43}
