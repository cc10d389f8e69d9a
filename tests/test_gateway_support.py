"""Shared pieces of the gateway tests: a real sandbox platform process, a gateway served
over real HTTP on loopback, and a terminal that makes QR codes and sales with a real
claimed device key. (No tests here.)"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server

from aggregation_gateway.app import create_app
from aggregation_gateway.key_files import load_or_create_signing_key
from aggregation_gateway.platform_registration import register_at_platform
from aggregation_gateway.settings import load_gateway_settings
from aggregation_gateway.wiring import Gateway, build_gateway
from market_protocol import (
    SALE_SCHEMA,
    QRPayload,
    encode_token,
    line_amount_fen,
    mac_record,
    new_nonce,
)
from market_protocol.signing import load_or_create_private_key, sign
from service_base.testing import ServiceProcess, free_port, tracepay_command

MANAGER = ("manager", "correct horse battery")

#: The database the gateways built by this module's tests use: ``sqlite`` (a file in the
#: data directory) or ``postgresql`` (a fresh database per gateway on the session's
#: server). Set by conftest's ``gateway_backend`` fixture, which runs the ``test_gateway_*``
#: modules once per backend.
BACKEND: dict[str, Any] = {"name": "sqlite", "server": None}


def new_database_url() -> str:
    """Empty for SQLite; else a fresh PostgreSQL database on the session's server."""
    if BACKEND["name"] != "postgresql":
        return ""
    return BACKEND["server"].new_database()


def drop_database(url: str) -> None:
    if url and BACKEND["server"] is not None:
        BACKEND["server"].drop_database(url)


@dataclass
class Platform:
    url: str
    process: ServiceProcess
    data_dir: Path

    def sign(self, body: bytes) -> str:
        """Sign as the platform does (its key file): crafted duplicate or out-of-order
        notifications that must verify."""
        key = load_or_create_private_key(self.data_dir / "platform_key.pem")
        return sign(key, body)


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    port = free_port()
    data = tmp_path_factory.mktemp("platform")
    url = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        tracepay_command("sandbox-platform", "--host", "127.0.0.1", "--port", str(port),
                         "--data-dir", str(data), "--notify-schedule", "0,0.3,0.6,1,2"),
        log_path=data / "platform.log", health_url=f"{url}/healthz")
    with process:
        yield Platform(url, process, data)


class ServedGateway:
    """A gateway app on a real loopback port (werkzeug threaded server in this process)."""

    def __init__(self, tmp_path: Path, platform_url: str, **overrides: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        base = {"data_dir": str(tmp_path / "gateway"), "port": self.port,
                "platform_url": platform_url, "manager_user": MANAGER[0],
                "manager_password": MANAGER[1], "scan_limit_per_address": "",
                "scan_limit_per_token": "", "scan_limit_per_device": "",
                "scan_refusals_per_address": "", "notify_limit_per_address": "",
                # Off unless a test is about them (fuzzers send many bad logins).
                "login_failures_per_address": "", "login_failures_per_account_address": "",
                "login_failures_per_account": "",
                "platform_app_id": "gw-" + secrets.token_hex(4)}
        self.database_url = "" if "database_url" in overrides else new_database_url()
        base["database_url"] = self.database_url
        base.update(overrides)
        self.settings = load_gateway_settings(overrides=base, environ={})
        if platform_url:
            Path(self.settings["data_dir"]).mkdir(parents=True, exist_ok=True)
            register_at_platform(self.settings,
                                 load_or_create_signing_key(self.settings["data_dir"]))
        self.gateway: Gateway = build_gateway(self.settings)
        self.app = create_app(gateway=self.gateway)
        self.server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       kwargs={"poll_interval": 0.05})  # quick shutdown
        self.http = requests.Session()
        self.http.trust_env = False

    def __enter__(self) -> ServedGateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        if self.database_url:
            self.gateway.db.close()
            self.app.extensions["limits"].close()
            drop_database(self.database_url)

    # -- helpers ----------------------------------------------------------------------
    def enrol(self, merchant_id: str = "stall-7", device_id: str | None = None,
              org: str = "retail_market") -> dict[str, Any]:
        body = {"merchant_id": merchant_id, "merchant_name": "Li's greens", "org": org}
        if device_id:
            body["device_id"] = device_id
        response = self.http.post(f"{self.url}/v1/devices", json=body, auth=MANAGER)
        assert response.status_code == 201, response.text
        return response.json()

    def claim(self, code: str) -> requests.Response:
        return self.http.post(f"{self.url}/v1/enrolments/{code}/claim")

    def terminal(self, merchant_id: str = "stall-7", device_id: str | None = None
                 ) -> Terminal:
        enrolled = self.enrol(merchant_id, device_id)
        claimed = self.claim(enrolled["enrolment_code"])
        assert claimed.status_code == 200, claimed.text
        return Terminal(claimed.json())

    def scan(self, url: str, **headers: str) -> requests.Response:
        return self.http.get(url, headers={"Accept": "application/json", **headers})

    def payment(self, payment_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.url}/v1/payments/{payment_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_status(self, payment_id: str, status: str, timeout: float = 20.0
                    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            current = self.payment(payment_id)
            if current["status"] == status:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"payment {payment_id} is {current['status']}, "
                                     f"waited for {status}")
            time.sleep(0.1)


class Terminal:
    """What a claimed terminal knows; builds QR URLs and MACed sales like pos_terminal."""

    def __init__(self, claim: dict[str, Any]) -> None:
        self.claim = claim
        self.device_id = claim["device_id"]
        self.key = bytes.fromhex(claim["device_key"])
        self.key_version = claim["key_version"]
        self.gateway_url = claim["gateway_url"]
        self.seq = 0

    def charge(self, lines: list[dict[str, Any]] | None = None, *, issued_at: int | None = None,
               key: bytes | None = None, gateway_url: str | None = None
               ) -> tuple[str, dict[str, Any]]:
        """A QR URL and the matching sale record (not yet sent anywhere)."""
        self.seq += 1
        lines = lines or [self.line("cabbage", "jin", 380, weight_g=1250)]
        total = sum(line["amount_fen"] for line in lines)
        nonce = new_nonce()
        issued = int(time.time()) if issued_at is None else issued_at
        payload = QRPayload(self.device_id, self.key_version, self.seq, total, "CNY", issued,
                            nonce)
        base = gateway_url or self.gateway_url
        token = encode_token(payload, key or self.key, base)
        sale = {
            "schema": SALE_SCHEMA, "sale_id": f"{self.device_id}.{self.seq}.{secrets.token_hex(3)}",
            "device_id": self.device_id, "seq": self.seq,
            "created_at_ms": issued * 1000, "currency": "CNY", "total_fen": total,
            "lines": lines, "qr_issued_at": issued, "qr_nonce": nonce.hex(),
            "key_version": self.key_version,
        }
        sale["mac"] = mac_record(sale, key or self.key)
        return f"{self.gateway_url}/q/{token}", sale

    @staticmethod
    def line(name: str, unit: str, price: int, *, weight_g: int | None = None,
             quantity: int | None = None) -> dict[str, Any]:
        return {"product_code": name.upper(), "name": name, "unit": unit,
                "unit_price_fen": price, "weight_g": weight_g, "quantity": quantity,
                "amount_fen": line_amount_fen(unit, price, weight_g=weight_g,
                                              quantity=quantity),
                "lot": "L-2026-11-20-A", "origin": "Chongming farm"}


def pay_at_checkout(checkout_url: str, payer_id: str = "shopper-1") -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.post(f"{checkout_url}/pay", data={"payer_id": payer_id},
                        allow_redirects=False)


def form_token(html: str) -> str:
    """The CSRF token of the first form on a manager page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no form token on the page"
    return found.group(1)


def manager_login(gw: ServedGateway) -> tuple[requests.Session, str]:
    """A browser session logged in to the manager pages, and its form token."""
    browser = requests.Session()
    browser.trust_env = False
    page = browser.get(f"{gw.url}/manager/login")
    response = browser.post(f"{gw.url}/manager/login", data={
        "username": MANAGER[0], "password": MANAGER[1], "csrf_token": form_token(page.text)})
    assert response.status_code == 200 and "Terminals" in response.text, response.text
    return browser, form_token(response.text)
