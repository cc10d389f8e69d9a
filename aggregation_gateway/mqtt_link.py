"""The gateway's one MQTT connection: sales in, payment results and trades out.

Client id ``tracepay-gateway`` (or the instance's broker user, see ``instances``) on a
persistent session (clean_session=False, QoS 1), so sales published while the gateway
was down are delivered when it returns. Named instances on one database read the sales
through one shared subscription (``$share/tracepay-gateway/...``): the broker hands
each sale to one of them, and the share of an instance that is down waits in its
session until it is back. Outgoing
messages come from the SQLite outbox and are marked published only on PUBACK; rows left
unacknowledged by a crash are published again on start (consumers are idempotent).

Exactly one link may run per gateway instance: it is started by the CLI parent (or its
background process), never by an HTTP worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt

from market_protocol.topics import SALES_WILDCARD

from . import outbox
from .database import DatabaseError, now_ms
from .instances import link_name, mqtt_client_id, shared_group
from .payments import PaymentService
from .sales_intake import SaleRejected, accept_sale

__all__ = ["MqttLink", "CLIENT_ID", "sales_filter"]

log = logging.getLogger(__name__)

CLIENT_ID = "tracepay-gateway"


def sales_filter(settings: Mapping[str, Any]) -> str:
    """The subscription the link reads sales through."""
    group = shared_group(settings)
    return f"$share/{group}/{SALES_WILDCARD}" if group else SALES_WILDCARD


class MqttLink:
    def __init__(self, service: PaymentService, settings: Mapping[str, Any],
                 client_id: str | None = None, poll_interval: float = 0.1) -> None:
        self.service = service
        self.settings = settings
        self.poll_interval = poll_interval
        self.subscription = sales_filter(settings)
        self.link_name = link_name(settings)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or mqtt_client_id(settings),
                                  clean_session=False, protocol=mqtt.MQTTv311)
        if settings.get("mqtt_username"):
            self.client.username_pw_set(settings["mqtt_username"],
                                        settings.get("mqtt_password") or None)
        self.client.manual_ack_set(True)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        # paho computes the delay in float seconds; its annotation says int
        self.client.reconnect_delay_set(0.2, 5)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._lock = threading.Lock()
        self._in_flight: dict[int, int] = {}   # mqtt mid -> outbox row id
        self._acked: set[int] = set()           # mids acknowledged before they were mapped
        self._sent: set[int] = set()            # outbox ids published in this run
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()  # set once the sales subscription is granted
        self.stats = {"sales_stored": 0, "sales_voided": 0, "sales_duplicate": 0,
                      "sales_rejected": 0, "sales_unacknowledged": 0, "published": 0}
        self._redeliver = threading.Event()

    # -- paho callbacks (network thread) --------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused: %s", reason)
            return
        client.subscribe(self.subscription, qos=1)
        log.info("MQTT link connected (session present: %s)", flags.session_present)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        if any(reason.is_failure for reason in reasons):
            log.error("subscription to %s refused: %s", self.subscription, reasons)
            return
        self.connected.set()
        self._set_state("subscribed")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        self._set_state("disconnected")

    def _set_state(self, state: str) -> None:
        """Tell the HTTP workers (``/healthz``) how the link is, through the database."""
        try:
            self.service.db.conn.execute(
                "INSERT INTO link_status (name, state, at_ms) VALUES (?, ?, ?) ON "
                "CONFLICT (name) DO UPDATE SET state = excluded.state, at_ms = excluded.at_ms",
                (self.link_name, state, now_ms()))
        except DatabaseError:
            log.exception("could not record the MQTT link state")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
                    ) -> None:
        """Acknowledge only what was stored (or refused for good): a sale that could not be
        written stays unacknowledged, and the broker delivers it again."""
        try:
            outcome = accept_sale(self.service, message.topic, message.payload)
        except SaleRejected:
            self.stats["sales_rejected"] += 1
        except Exception:  # a storage failure must not kill the network thread
            log.exception("could not store a sale from %s; left for redelivery", message.topic)
            self.stats["sales_unacknowledged"] += 1
            self._redeliver.set()
            return
        else:
            self.stats[f"sales_{outcome}"] += 1
        if message.qos > 0:
            client.ack(message.mid, message.qos)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        with self._lock:
            self._acked.add(mid)

    # -- outbox publisher (own thread) ----------------------------------------------------
    def _settle_acks(self) -> None:
        with self._lock:
            done = [mid for mid in self._acked if mid in self._in_flight]
            ids = [self._in_flight.pop(mid) for mid in done]
            self._acked.difference_update(done)
        if ids:
            outbox.mark_published(self.service.db.conn, ids)
            self.stats["published"] += len(ids)

    def publish_pending(self) -> int:
        """Publish outbox rows not yet sent in this run; returns how many were handed to paho."""
        if not self.client.is_connected():
            return 0
        count = 0
        for row in outbox.unpublished(self.service.db.conn):
            if row["id"] in self._sent:
                continue
            info = self.client.publish(row["topic"], bytes(row["payload"]), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            with self._lock:
                self._in_flight[info.mid] = row["id"]
            self._sent.add(row["id"])
            count += 1
        return count

    def _run_publisher(self) -> None:
        while not self._stop.is_set():
            try:
                if self._redeliver.is_set():
                    # MQTT 3.1.1 redelivers unacknowledged messages when the session resumes.
                    self._redeliver.clear()
                    self._stop.wait(1.0)
                    self.client.reconnect()
                self._settle_acks()
                self.publish_pending()
            except Exception:
                log.exception("outbox publisher failed; retrying")
            self._stop.wait(self.poll_interval)
        self._settle_acks()

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> MqttLink:
        self.client.connect_async(self.settings["mqtt_host"], int(self.settings["mqtt_port"]),
                                  keepalive=30)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run_publisher, name="outbox-publisher",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self.client.disconnect()
        self.client.loop_stop()
        self._set_state("stopped")
