"""Shared by the JetStream bridge tests and drills: a bridge publishing to a real cluster,
signed trades, and counting what the stream holds."""

from __future__ import annotations

from pathlib import Path

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger_bridge.ordering import stream_ordering
from ledger_bridge.sample_trades import Seller, line, make_trade
from ledger_bridge.service import BridgeService
from market_protocol.topics import TRADES_TOPIC
from service_base.nats_cluster import AUDITOR_USER, BRIDGE_USER
from trace_ledger.stream_audit import count_stream, read_stream

KEY = Ed25519PrivateKey.generate()
FARM = Seller("farm-1", "Green Farm", "production_base", "dev-farm")


def trades(count: int, first: int = 1) -> list[dict]:
    return [make_trade(KEY, FARM, seq, [line("cabbage", 1000 + seq, lot=f"L{seq}")],
                       payer_id=None, at_ms=1_763_700_000_000 + seq)
            for seq in range(first, first + count)]


def bridge_settings(cluster, data_dir: Path, **extra) -> dict:
    return {"nats": ",".join(cluster.servers), "nats_user": BRIDGE_USER,
            "nats_password_file": str(cluster.password_file(BRIDGE_USER)),
            "nats_replicas": cluster.replicas, "nats_ack_timeout_s": 2.0,
            "data_dir": str(data_dir), "block_max": 500, **extra}


def jetstream_bridge(cluster, data_dir: Path, **extra) -> BridgeService:
    return BridgeService(data_dir, gateway_key=KEY.public_key(),
                         ordering=stream_ordering(bridge_settings(cluster, data_dir, **extra)))


def stream_records(cluster):
    """(StreamCount, set of record ids) as the auditor reads them from the stream."""
    return count_stream(read_stream(cluster.servers, user=AUDITOR_USER,
                                    password=cluster.password(AUDITOR_USER)))


def publish_mqtt(port: int, payloads: list[bytes]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-gateway-js",
                         protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for info in [client.publish(TRADES_TOPIC, payload, qos=1) for payload in payloads]:
            info.wait_for_publish(15)
    finally:
        client.disconnect()
        client.loop_stop()
