"""The MQTT uplink: drains the outbox to the broker and takes payment results back.

One paho-mqtt client (MQTT 3.1.1, ``clean_session=False``, QoS 1, client id
``terminal-<device_id>``). Sales are pipelined — up to ``window`` unacknowledged at once —
and the broker's PUBACKs are turned into ``sent`` marks in batches, so a backlog of days
drains at thousands of sales a second instead of one round trip per sale.

Threads: paho's network thread only appends acknowledged message ids to a deque (paho
calls ``on_publish`` with its own lock held, so nothing here may block on ours there); a
sender thread publishes and records acknowledgements. Messages paho already holds are
re-sent by paho itself after a reconnect; after a restart the outbox's queued rows are.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from market_protocol import SchemaError, canonical_json, check_payment_result, verify_record_mac
from market_protocol.topics import results_topic, sales_topic

from .outbox import Outbox, StoredSale
from .provisioning import TerminalConfig

__all__ = ["Uplink", "ResultCallback"]

log = logging.getLogger(__name__)

#: How long the sender lets PUBACKs accumulate before it records them.
ACK_GATHER_S = 0.02
#: After a lost connection, sales the broker acknowledged this long before the loss are
#: sent again: a broker that crashed may have acknowledged them without saving them
#: (Mosquitto saves its state every second). Consumers dedup by sale id and seq.
RESEND_WINDOW_MS = 5_000

ResultCallback = Callable[[StoredSale, dict[str, Any]], None]


class Uplink:
    def __init__(self, outbox: Outbox, config: TerminalConfig, device_key: bytes, *,
                 on_result: ResultCallback | None = None, window: int = 1000,
                 batch: int = 500) -> None:
        self.outbox = outbox
        self.config = config
        self._key = device_key
        self._on_result = on_result
        self._window = window
        self._batch = batch
        self._sales_topic = sales_topic(config.device_id)
        self._results_topic = results_topic(config.device_id)
        self._acked: collections.deque[int] = collections.deque()
        self._mid_to_seq: dict[int, int] = {}
        self._inflight_seqs: set[int] = set()
        self._cursor = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost_at_ms: int | None = None
        self._rewind_from_ms: int | None = None
        self.rejected_results = 0
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"terminal-{self.config.device_id}",
                             clean_session=False, protocol=mqtt.MQTTv311)
        client.username_pw_set(self.config.mqtt_username, self.config.mqtt_password)
        # The window is enforced here, not by paho: with a paho limit set, every PUBACK makes
        # paho walk all outstanding messages (O(window) per ack), which caps the drain rate.
        client.max_inflight_messages_set(0)
        client.max_queued_messages_set(0)
        # paho annotates the delays as int, yet waits any number of seconds it is given
        client.reconnect_delay_set(min_delay=0.2, max_delay=3)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        if not self.config.mqtt_host:
            log.warning("the enrolment names no MQTT broker: sales stay queued in the outbox")
            return
        self.client.connect_async(self.config.mqtt_host, self.config.mqtt_port, keepalive=20)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="terminal-uplink", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self._thread = None
        self._flush_acks()
        self.client.disconnect()
        self.client.loop_stop()
        self._connected.clear()

    def wake(self) -> None:
        """Tell the sender a new sale is queued (called after each charge)."""
        self._wake.set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    # -- paho callbacks (network thread) -------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        client.subscribe(self._results_topic, qos=1)
        if self._lost_at_ms is not None:
            self._rewind_from_ms = self._lost_at_ms - RESEND_WINDOW_MS
            self._lost_at_ms = None
        self._connected.set()
        self._wake.set()
        log.info("uplink connected (session present: %s)", flags.session_present)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if not self._stopping.is_set():
            if was_connected:
                self._lost_at_ms = time.time_ns() // 1_000_000
            log.info("uplink disconnected (%s); sales keep queueing", reason)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        self._acked.append(mid)
        if not self._wake.is_set():  # lock-free check: most acks find it set already
            self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic != self._results_topic:
            return
        try:
            result = check_payment_result(canonical_json.loads(message.payload))
        except (ValueError, SchemaError) as exc:
            self.rejected_results += 1
            log.warning("ignored a malformed payment result: %s", exc)
            return
        if result["device_id"] != self.config.device_id or not verify_record_mac(result, self._key):
            self.rejected_results += 1
            log.warning("ignored a payment result with a bad MAC (seq %s)", result["seq"])
            return
        sale, changed = self.outbox.record_result(result)
        if sale is None:
            log.warning("payment result for unknown seq %s ignored", result["seq"])
            return
        if changed and self._on_result is not None:
            try:
                self._on_result(sale, result)
            except Exception:  # a UI callback must not kill the network thread
                log.exception("payment result callback failed")

    # -- sender thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            if self._mid_to_seq and len(self._acked) < self._batch:
                # Let acknowledgements gather: one commit (one fsync) per batch, not per sale.
                self._stopping.wait(ACK_GATHER_S)
            self._flush_acks()
            if self._connected.is_set():
                self._rewind()
                self._publish_more()

    def _rewind(self) -> None:
        since, self._rewind_from_ms = self._rewind_from_ms, None
        if since is None:
            return
        low = self.outbox.requeue_sent_since(since)
        if low is not None:
            log.info("re-sending sales acknowledged since %s (broker may have lost them)", since)
            self._cursor = min(self._cursor, low - 1)

    def _flush_acks(self) -> None:
        mids: list[int] = []
        while self._acked:
            mids.append(self._acked.popleft())
        if not mids:
            return
        # publish() and the mid -> seq record happen on this thread before any flush, so a
        # mid not found here is not one of ours (nothing to mark).
        seqs = []
        for mid in mids:
            seq = self._mid_to_seq.pop(mid, None)
            if seq is not None:
                self._inflight_seqs.discard(seq)
                seqs.append(seq)
        self.outbox.mark_sent(seqs)

    def _publish_more(self) -> None:
        room = self._window - len(self._mid_to_seq)
        while room > 0 and self._connected.is_set() and not self._stopping.is_set():
            rows = self.outbox.queued_after(self._cursor, min(room, self._batch))
            if not rows:
                return
            for seq, payload in rows:
                self._cursor = seq
                if seq in self._inflight_seqs:
                    continue  # paho still holds it and re-sends it itself after a reconnect
                info = self.client.publish(self._sales_topic, payload, qos=1)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    log.warning("publish of seq %s failed (%s); will retry", seq, info.rc)
                    self._cursor = seq - 1
                    return
                self._mid_to_seq[info.mid] = seq
                self._inflight_seqs.add(seq)
                room -= 1

    def resend_from(self, seq: int) -> None:
        """Publish queued rows again from ``seq`` (a voided sale: its record changed)."""
        self._inflight_seqs.discard(seq)  # the copy in flight is the old record
        self._cursor = min(self._cursor, seq - 1)
        self._wake.set()
