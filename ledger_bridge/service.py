"""The bridge as one object: ledger, index, writer, intake and the MQTT link, started and
stopped together. The HTTP app (``app.py``) and the CLI are thin shells over it."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from market_protocol import signing
from trace_ledger import Ledger

from .catalogue import DEFAULT_ENTRIES, Catalogue, CatalogueEntry
from .endorsement import ContractRunner, make_endorse
from .intake import Intake
from .trace_store import STORE_FILE, TraceStore
from .writer import Writer

__all__ = ["BridgeService", "bearer_matches", "fetch_gateway_key", "SECRET_FILE"]

log = logging.getLogger(__name__)

SECRET_FILE = "bridge_secret.key"


def _load_or_create_secret(path: Path) -> bytes:
    """The salt secret for payer hashes; losing it only makes old hashes unlinkable."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


def bearer_matches(token: str | None, authorization: str | None) -> bool:
    """True when no token is configured or the header carries it (constant time)."""
    if not token:
        return True
    expected = hashlib.sha256(f"Bearer {token}".encode()).digest()
    return hmac.compare_digest(hashlib.sha256((authorization or "").encode()).digest(),
                               expected)


def fetch_gateway_key(gateway_url: str, timeout_s: float = 60.0) -> Ed25519PublicKey:
    """``GET <gateway>/v1/keys``, retried until ``timeout_s``: the gateway may start later."""
    deadline = time.monotonic() + timeout_s
    url = gateway_url.rstrip("/") + "/v1/keys"
    delay = 0.2
    while True:
        try:
            response = requests.get(url, timeout=5)
            if response.status_code == 200:
                return signing.load_public_key(response.json()["gateway_public_key_pem"])
            problem = f"HTTP {response.status_code}"
        except (requests.RequestException, ValueError, KeyError) as exc:
            problem = str(exc)
        if time.monotonic() > deadline:
            raise RuntimeError(f"could not fetch the gateway's key from {url}: {problem}")
        log.info("gateway key not available yet (%s); retrying", problem)
        time.sleep(delay)
        delay = min(delay * 2, 3.0)


class BridgeService:
    def __init__(self, data_dir: str | os.PathLike[str], *, gateway_key: Ed25519PublicKey,
                 block_max: int = 500, block_timeout_s: float = 0.2,
                 enrol_unknown_devices: bool = True, public_url: str = "",
                 admin_token: str | None = None, trades_token: str | None = None,
                 ordering: Callable[[Callable[[Any], str | None]], Any] | None = None) -> None:
        """``ordering``: None runs the solo in-process ledger under ``data_dir/ledger``;
        otherwise a factory that, given the endorsement rule, returns the ledger the bridge
        writes to (a ``trace_ledger.stream_ledger.StreamLedger`` for JetStream)."""
        self.data_dir = Path(data_dir)
        self.public_url = public_url
        self.admin_token = admin_token
        self.trades_token = trades_token
        self.gateway_key = gateway_key
        self.store = TraceStore(self.data_dir / STORE_FILE)
        contract = ContractRunner(gateway_key)
        endorse = make_endorse(self.store, contract)
        if ordering is None:
            self.ledger = Ledger.open(self.data_dir / "ledger", block_max=block_max,
                                      block_timeout_s=block_timeout_s, endorse=endorse)
        else:
            self.ledger = ordering(endorse)
        self.ordering = "solo" if ordering is None else "jetstream"
        self._catalogue_lock = threading.Lock()
        self._catalogue = self._load_catalogue()
        # The stream ledger gives the intake its own view (recovered entries, no node reads).
        self.intake = Intake(getattr(self.ledger, "intake_view", self.ledger), self.store,
                             contract=contract,
                             secret=_load_or_create_secret(self.data_dir / SECRET_FILE),
                             catalogue=self.catalogue,
                             enrol_unknown_devices=enrol_unknown_devices)
        self.writer = Writer(self.ledger, self.store, max_batch=block_max).start()
        self.mqtt: Any = None
        self.started_ms = int(time.time() * 1000)

    def _load_catalogue(self) -> Catalogue:
        entries = self.store.catalogue_entries()
        catalogue = Catalogue.of(DEFAULT_ENTRIES)
        for entry in entries:
            catalogue.add(entry)
        return catalogue

    def catalogue(self) -> Catalogue:
        return self._catalogue

    def add_catalogue_entry(self, entry: CatalogueEntry) -> None:
        """Raises ValueError when a synonym already names another product."""
        with self._catalogue_lock:
            updated = Catalogue.of(self._catalogue.entries.values())
            updated.add(entry)
            self.writer.call(lambda: self.store.put_catalogue_entry(entry))
            self._catalogue = updated

    def check_admin(self, authorization: str | None) -> bool:
        return bearer_matches(self.admin_token, authorization)

    def check_trades(self, authorization: str | None) -> bool:
        return bearer_matches(self.trades_token, authorization)

    def health(self) -> dict[str, Any]:
        mqtt = self.mqtt
        status = getattr(self.ledger, "status", None)
        return {"role": "writer", "pending": self.ledger.pending(),
                **({"ordering": status()} if status else {}),
                "writer_backlog": self.writer.backlog(),
                "mqtt": None if mqtt is None else {"connected": mqtt.connected,
                                                   "received": mqtt.received,
                                                   "acked": mqtt.acked}}

    def start_mqtt(self, host: str, port: int, username: str | None = None,
                   password: str | None = None) -> None:
        from .mqtt_consumer import TradeConsumer

        self.mqtt = TradeConsumer(self, host, port, username=username, password=password)
        self.mqtt.start()

    def close(self) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()
        stop_retrying = getattr(self.ledger, "stop_retrying", None)
        if stop_retrying is not None:  # a batch waiting for the stream gives up, unacked
            stop_retrying()
        self.writer.stop()
        self.ledger.close()
        self.store.close()
