"""Read-only bridge for HTTP worker processes (``tracepay bridge --workers N``).

There is exactly one writer: a child process running the whole bridge (MQTT consumer,
ledger writer, index) on a private loopback port. Each worker opens the node stores and the
index read-only and answers reads itself; every POST is forwarded to the writer unchanged,
so the writer's checks and answers are the only ones. A worker's ledger object caches the
block list it loaded, so it is reopened when the node store has grown past it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flask import Request, Response, jsonify

from trace_ledger import Ledger

from .catalogue import DEFAULT_ENTRIES, Catalogue
from .service import bearer_matches
from .trace_store import STORE_FILE, TraceStore

__all__ = ["ReaderService", "forward_write"]

_FORWARDED_HEADERS = ("Content-Type", "Authorization", "Accept")


def forward_write(writer_url: str, request: Request) -> Response:
    """Send a POST to the writer and relay its answer (status, body, content type)."""
    headers = {name: request.headers[name] for name in _FORWARDED_HEADERS
               if name in request.headers}
    url = writer_url.rstrip("/") + request.full_path.rstrip("?")
    try:
        answer = requests.post(url, data=request.get_data(), headers=headers, timeout=60)
    except requests.RequestException:
        response = jsonify({"error": "writer_unavailable",
                            "message": "the bridge's writer is not answering; retry shortly"})
        response.status_code = 503
        return response
    return Response(answer.content, status=answer.status_code,
                    content_type=answer.headers.get("Content-Type", "application/json"))


class ReaderService:
    """What ``create_app`` needs, read-only: the index, the ledger and the catalogue."""

    def __init__(self, data_dir: str | Path, *, writer_url: str,
                 gateway_key: Ed25519PublicKey, public_url: str = "",
                 admin_token: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.writer_url = writer_url
        self.gateway_key = gateway_key
        self.public_url = public_url
        self.admin_token = admin_token
        self.store = TraceStore(self.data_dir / STORE_FILE, readonly=True)
        self._lock = threading.Lock()
        self._retired: Ledger | None = None
        self._ledger, self._height = self._open()

    def _open(self) -> tuple[Ledger, int]:
        ledger = Ledger.open(self.data_dir / "ledger")
        return ledger, ledger.head()["height"]

    @property
    def ledger(self) -> Ledger:
        """The ledger, reopened when the writer has cut blocks since it was loaded."""
        current = self._ledger
        last = current.nodes[current.orgs[0]].last_block()
        if last is not None and last[0] != self._height:
            with self._lock:
                if self._ledger is current:
                    # Requests may still be reading the old object: close it one reopen later.
                    if self._retired is not None:
                        self._retired.close()
                    self._retired = current
                    self._ledger, self._height = self._open()
        return self._ledger

    def catalogue(self) -> Catalogue:
        catalogue = Catalogue.of(DEFAULT_ENTRIES)
        for entry in self.store.catalogue_entries():
            catalogue.add(entry)
        return catalogue

    def check_admin(self, authorization: str | None) -> bool:
        return bearer_matches(self.admin_token, authorization)

    def check_trades(self, authorization: str | None) -> bool:
        return True  # trades are forwarded; the writer checks its token

    def health(self) -> dict[str, Any]:
        return {"role": "reader", "writer": self.writer_url}

    def close(self) -> None:
        if self._retired is not None:
            self._retired.close()
        self._ledger.close()
        self.store.close()
