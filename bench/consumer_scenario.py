"""A small market, farm → wholesale → stall → shopper, loaded into a running ledger bridge.

Shared by the consumer's benchmark and its browser tests: the trades are real gateway-signed
``tracepay.trade/1`` records (``ledger_bridge.sample_trades``) posted to the bridge's
``POST /v1/trades``, so the trace pages show what the real matching and ledger produced.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger_bridge.sample_trades import Seller, line, make_trade
from market_protocol import trace_code_for_sale
from service_base.testing import ServiceProcess, free_port, tracepay_command

__all__ = ["FARM", "WHOLESALE", "STALL", "Market", "write_gateway_key", "wait_for_trace",
           "trace_services"]

FARM = Seller("farm-shouguang", "寿光绿野合作社 Green Field Co-op", "production_base", "farm-01")
WHOLESALE = Seller("wh-north", "北郊批发市场 张记 Zhang's Wholesale", "wholesale_market", "wh-01")
STALL = Seller("stall-a12", "李阿姨蔬菜 Auntie Li's Vegetables", "retail_market", "stall-01")
DAY_MS = 86_400_000


def write_gateway_key(key: Ed25519PrivateKey, path: Path) -> Path:
    """The gateway's public key as the PEM file ``tracepay bridge --gateway-public-key`` reads."""
    path.write_bytes(key.public_key().public_bytes(Encoding.PEM,
                                                   PublicFormat.SubjectPublicKeyInfo))
    return path


@contextmanager
def trace_services(root: Path, key: Ed25519PrivateKey) -> Iterator[tuple[str, str]]:
    """A ledger bridge trusting ``key`` and a consumer app reading it, as processes on free
    loopback ports under ``root``; yields ``(bridge_url, consumer_url)``. The consumer's
    gateway address leads nowhere: trace pages never ask it. The ledger's keys are pinned
    (``root/ledger-trust.json``, by ``tracepay ledger trust``) once the bridge made them, as
    a deployment does, and the consumer checks against them only."""
    pem = write_gateway_key(key, root / "gateway.pub.pem")
    bridge_port, consumer_port = free_port(), free_port()
    bridge_url = f"http://127.0.0.1:{bridge_port}"
    consumer_url = f"http://127.0.0.1:{consumer_port}"
    bridge = ServiceProcess(tracepay_command(
        "bridge", "--port", str(bridge_port), "--data-dir", str(root / "bridge"),
        "--gateway-public-key", str(pem)), log_path=root / "bridge.log",
        health_url=f"{bridge_url}/healthz", startup_timeout=60)
    trust = root / "ledger-trust.json"
    consumer = ServiceProcess(tracepay_command(
        "consumer", "--port", str(consumer_port), "--bridge-url", bridge_url,
        "--gateway-url", f"http://127.0.0.1:{free_port()}"), log_path=root / "consumer.log",
        health_url=f"{consumer_url}/healthz",
        env={"TRACEPAY_CONSUMER_LEDGER_KEYS_FILE": str(trust)})
    with bridge:
        subprocess.run(tracepay_command("ledger", "trust", "--data-dir", str(root / "bridge"),
                                        "--out", str(trust)), check=True, timeout=120,
                       capture_output=True)
        with consumer:
            yield bridge_url, consumer_url


def wait_for_trace(bridge_url: str, code: str, timeout: float = 30.0,
                   predicate: Any = None) -> dict[str, Any]:
    """Poll ``GET /v1/trace/<code>`` until it answers (and ``predicate(answer)`` holds)."""
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(f"{bridge_url}/v1/trace/{code}", timeout=5)
        if response.status_code == 200 and (predicate is None or predicate(response.json())):
            return response.json()
        if time.monotonic() > deadline:
            raise TimeoutError(f"trace {code} not ready: {response.status_code} "
                               f"{response.text[:300]}")
        time.sleep(0.1)


def _today_ms() -> int:
    """Half an hour ago, but never before local midnight: the stall's stock is "today's"."""
    now = datetime.now().astimezone()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(max(midnight + timedelta(seconds=1), now - timedelta(minutes=30)).timestamp()
               * 1000)


@dataclass
class Market:
    """Trades of one farm, one wholesaler and one stall: the stall restocks today."""

    key: Ed25519PrivateKey
    today_ms: int = field(default_factory=_today_ms)
    admin_token: str | None = None
    shopper_codes: list[str] = field(default_factory=list)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}

    def register_parties(self, bridge_url: str) -> None:
        """Tell the bridge which payer accounts the wholesaler and the stall buy with."""
        for seller, payer in ((WHOLESALE, "alipay:wh-north"), (STALL, "alipay:stall-a12")):
            response = requests.post(
                f"{bridge_url}/v1/parties/{seller.merchant_id}/payer-ids",
                json={"name": seller.name, "org": seller.org, "payer_ids": [payer]},
                headers=self._headers(), timeout=10)
            response.raise_for_status()

    def supply_trades(self) -> list[dict[str, Any]]:
        """Farm → wholesale (two lots), wholesale → stall: the stall's stock of the day."""
        t = self.today_ms - 2 * DAY_MS
        farm_sale = make_trade(self.key, FARM, 1, [
            line("cabbage", 500_000, unit="kg", unit_price_fen=120, name="大白菜",
                 lot="F-1119", origin="山东寿光 Shouguang, Shandong"),
            line("tomato", 200_000, unit="kg", unit_price_fen=300, name="西红柿",
                 lot="F-1120", origin="山东寿光 Shouguang, Shandong"),
        ], payer_id="alipay:wh-north", at_ms=t)
        wholesale_sale = make_trade(self.key, WHOLESALE, 1, [
            line("cabbage", 20_000, unit="kg", unit_price_fen=200, name="大白菜 cabbage",
                 lot="W-17", origin="山东寿光 Shouguang, Shandong"),
            line("tomato", 10_000, unit="kg", unit_price_fen=450, name="西红柿 tomato",
                 lot="W-18", origin="山东寿光 Shouguang, Shandong"),
        ], payer_id="alipay:stall-a12", at_ms=self.today_ms)
        return [farm_sale, wholesale_sale]

    def shopper_trade(self, seq: int, weight_g: int = 1250) -> dict[str, Any]:
        """A shopper buys cabbage (and tomatoes) at the stall today."""
        at = self.today_ms + 60_000 + seq * 1_000
        trade = make_trade(self.key, STALL, seq, [
            line("cabbage", weight_g, unit="jin", unit_price_fen=180, name="大白菜 cabbage",
                 origin="山东寿光 Shouguang, Shandong"),
            line("tomato", 500, unit="jin", unit_price_fen=350, name="西红柿 tomato",
                 origin="山东寿光 Shouguang, Shandong"),
        ], payer_id=f"alipay:shopper-{seq:04d}", at_ms=at)
        self.shopper_codes.append(trace_code_for_sale(trade["trade_id"]))
        return trade

    def load(self, bridge_url: str, shoppers: int = 1) -> list[str]:
        """Register, post every trade, wait until each shopper's trace is on the ledger."""
        self.register_parties(bridge_url)
        trades = self.supply_trades() + [self.shopper_trade(seq) for seq in range(1, shoppers + 1)]
        for trade in trades:
            response = requests.post(f"{bridge_url}/v1/trades", json=trade, timeout=10)
            if response.status_code != 200 or response.json().get("status") not in (
                    "accepted", "duplicate"):
                raise RuntimeError(f"bridge refused {trade['trade_id']}: "
                                   f"{response.status_code} {response.text[:300]}")
        for code in self.shopper_codes:
            wait_for_trace(bridge_url, code,
                           predicate=lambda answer: bool(answer.get("proofs")))
        return list(self.shopper_codes)
