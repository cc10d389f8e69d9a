"""MQTT link: confirmed trades from ``tracepay/v1/ledger/trades`` into the writer.

MQTT 3.1.1, client id ``tracepay-bridge``, persistent session (``clean_session=False``), QoS 1
and manual acknowledgement: the PUBACK goes out only after the writer has committed the
trade's block on every node, so a crash at any moment means redelivery, never loss; the
intake is idempotent on ``trade_id``, so redelivery never means a double entry.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from market_protocol.topics import TRADES_TOPIC

__all__ = ["TradeConsumer", "CLIENT_ID"]

log = logging.getLogger(__name__)

CLIENT_ID = "tracepay-bridge"


def decode_payload(payload: bytes) -> Any:
    """The trade as JSON, or the raw text when it is not JSON (recorded as rejected)."""
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload.decode("utf-8", errors="replace")[:4000]


class TradeConsumer:
    def __init__(self, service: Any, host: str, port: int, *, username: str | None = None,
                 password: str | None = None, client_id: str = CLIENT_ID) -> None:
        self.service = service
        self.host, self.port = host, port
        self.connected = False
        self.received = 0
        self.acked = 0
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             clean_session=False, protocol=mqtt.MQTTv311, manual_ack=True)
        if username:
            client.username_pw_set(username, password)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                    _properties: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        self.connected = True
        client.subscribe(TRADES_TOPIC, qos=1)
        log.info("bridge subscribed to %s on %s:%s", TRADES_TOPIC, self.host, self.port)

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any,
                       _properties: Any) -> None:
        self.connected = False
        if reason.is_failure:
            log.warning("MQTT disconnected: %s; reconnecting", reason)

    def _on_message(self, client: mqtt.Client, _userdata: Any,
                    message: mqtt.MQTTMessage) -> None:
        self.received += 1
        trade = decode_payload(message.payload)
        mid, qos = message.mid, message.qos
        future = self.service.writer.submit(lambda: self.service.intake.trade(trade))
        future.add_done_callback(lambda done: self._done(done, client, mid, qos))

    def _done(self, future: Future, client: mqtt.Client, mid: int, qos: int) -> None:
        error = future.exception()
        if error is not None:
            # Not acknowledged: the broker redelivers it on the next session.
            log.error("trade message %s not committed: %s", mid, error)
            return
        result = future.result()
        if result.status == "rejected":
            log.warning("trade %s rejected: %s", result.trade_id,
                        result.verdict.reason if result.verdict else "")
        client.ack(mid, qos)
        self.acked += 1
