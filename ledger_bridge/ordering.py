"""How the bridge reaches the ledger's ordering in ``--ordering jetstream`` mode: the
stream publisher, the node reader and the :class:`~trace_ledger.stream_ledger.StreamLedger`
that joins them, built from the bridge's settings."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from market_protocol.http_errors import ApiError
from trace_ledger.node_client import NodeReader
from trace_ledger.stream import StreamPublisher
from trace_ledger.stream_ledger import StreamLedger

__all__ = ["stream_ordering", "nats_tls_context", "NoNodeReader", "JOURNAL_FILE"]

JOURNAL_FILE = "ordering-journal.json"


class NoNodeReader:
    """Stands in for the node reader when no node is configured: every read answers 503
    saying so, while intake (publishing to the stream) works."""

    def close(self) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        def unavailable(*_args: Any, **_kwargs: Any) -> Any:
            raise ApiError(503, "no_ledger_nodes", "this bridge publishes to the ledger's "
                           "stream but knows no node to read from; start it with --nodes")
        return unavailable


def node_reader(urls: list[str]) -> NodeReader:
    """Reads (trace, proofs, head, keys) from the organisations' nodes, with failover."""
    return NodeReader(urls)


def nats_tls_context(settings: dict[str, Any]) -> ssl.SSLContext | None:
    """The TLS context for the NATS connection: servers checked against ``nats_tls_ca``,
    and a client certificate when ``nats_tls_cert``/``nats_tls_key`` are set."""
    if not settings.get("nats_tls_ca"):
        if settings.get("nats_tls_cert"):
            raise ValueError("nats_tls_cert needs nats_tls_ca (the servers' CA)")
        return None
    context = ssl.create_default_context(cafile=settings["nats_tls_ca"])
    if settings.get("nats_tls_cert"):
        context.load_cert_chain(settings["nats_tls_cert"], settings.get("nats_tls_key"))
    return context


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def stream_ordering(settings: dict[str, Any], *, reader: Any = None
                    ) -> Callable[[Callable[[Any], str | None]], StreamLedger]:
    """The ``ordering`` factory for :class:`~ledger_bridge.service.BridgeService`.

    Connects as ``nats_user`` (password from ``nats_password_file``), makes sure the
    ``LEDGER`` stream exists, and reads from ``reader`` or, if none is given, from the
    nodes in ``nodes``. Raises ValueError for missing settings and
    ``trace_ledger.stream.StreamError`` when the cluster cannot be reached.
    """
    servers = _split(settings.get("nats"))
    if not servers:
        raise ValueError("--ordering jetstream needs --nats URL[,URL...]")
    password = None
    if settings.get("nats_password_file"):
        password = Path(settings["nats_password_file"]).read_text().strip()
    if reader is None:
        urls = _split(settings.get("nodes"))
        reader = node_reader(urls) if urls else NoNodeReader()

    tls = nats_tls_context(settings)

    def build(endorse: Callable[[Any], str | None]) -> StreamLedger:
        publisher = StreamPublisher(servers, user=settings.get("nats_user"), password=password,
                                    tls=tls,
                                    bridge_id=settings.get("nats_bridge_id") or "market",
                                    ack_timeout_s=settings.get("nats_ack_timeout_s") or 5.0)
        try:
            publisher.ensure_stream(settings.get("nats_replicas") or 3)
            data_dir = Path(settings["data_dir"])
            data_dir.mkdir(parents=True, exist_ok=True)
            return StreamLedger(publisher, reader, journal_path=data_dir / JOURNAL_FILE,
                                batch_max=settings.get("block_max") or 500, endorse=endorse)
        except BaseException:
            publisher.close()
            raise
    return build
