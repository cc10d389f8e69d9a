"""Fault drills on the real three-server cluster: kill -9 one nats-server while batches are
being published (publishing goes on, nothing lost or doubled, the server catches up), and
stop two (no quorum: publishing fails cleanly, the bridge acknowledges nothing, and every
trade lands once the servers are back)."""

from __future__ import annotations

import json
import threading

import pytest
from bridge_jetstream_support import (
    jetstream_bridge,
    publish_mqtt,
    stream_records,
    trades,
)

from service_base.nats_cluster import BRIDGE_USER
from service_base.testing import wait_until
from trace_ledger import LedgerEntry
from trace_ledger.stream import StreamPublisher, StreamUnavailableError
from trace_ledger.stream_ledger import StreamLedger


class SustainedPublisher(threading.Thread):
    """Publishes batches of ``size`` entries back to back through a StreamLedger (so a
    batch the stream cannot take is retried with the same id), recording what was acked."""

    def __init__(self, cluster, journal, size: int = 50) -> None:
        super().__init__(daemon=True, name="drill-publisher")
        self.publisher = StreamPublisher(cluster.servers, user=BRIDGE_USER,
                                         password=cluster.password(BRIDGE_USER),
                                         ack_timeout_s=2)
        self.publisher.ensure_stream(3)
        self.ledger = StreamLedger(self.publisher, None, journal_path=journal,
                                   batch_max=size, retry_initial_s=0.05, retry_max_s=0.5)
        self.size = size
        self.acked: list[str] = []
        self.batches = 0
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                ids = [f"drill-{self.batches}-{i}" for i in range(self.size)]
                self.ledger.submit([LedgerEntry("trade", rid, {"i": i}, [rid])
                                    for i, rid in enumerate(ids)])
                self.ledger.flush()
                self.acked.extend(ids)
                self.batches += 1
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def finish(self) -> None:
        self.halt.set()
        self.join(60)
        self.ledger.close()
        assert self.error is None, self.error


def _index_of(name: str) -> int:
    return int(name.rsplit("-", 1)[1]) - 1


def test_kill_9_of_the_stream_leader_during_publishing_loses_and_doubles_nothing(
        nats_cluster, tmp_path):
    publisher = SustainedPublisher(nats_cluster, tmp_path / "journal.json")
    publisher.start()
    wait_until(lambda: publisher.batches >= 20, message="publishing under way", timeout=60)
    leader = _index_of(nats_cluster.stream_state(0)["cluster"]["leader"])
    nats_cluster.kill(leader)
    at_kill = publisher.batches
    wait_until(lambda: publisher.batches >= at_kill + 40, timeout=90,
               message="publishing goes on with two servers")
    assert publisher.error is None
    nats_cluster.start_server(leader)               # the same store, config and ports
    at_restart = publisher.batches
    wait_until(lambda: publisher.batches >= at_restart + 20, message="publishing with three", timeout=60)
    publisher.finish()

    count, found = stream_records(nats_cluster)
    assert set(publisher.acked) <= found                       # nothing acknowledged is lost
    assert count.duplicated == 0 and count.malformed == 0      # nothing doubled
    assert count.entries == len(found) == len(publisher.acked)
    assert count.messages == publisher.batches
    survivor = (leader + 1) % 3

    def caught_up() -> bool:
        rejoined = nats_cluster.stream_state(leader)
        return bool(rejoined) and rejoined["last_seq"] == \
            nats_cluster.stream_state(survivor)["last_seq"] == count.messages
    wait_until(caught_up, timeout=60, message="the killed server caught up")
    nats_cluster.wait_healthy([leader])


def test_without_quorum_a_publish_fails_cleanly_and_stores_nothing(nats_cluster):
    with StreamPublisher(nats_cluster.servers, user=BRIDGE_USER,
                         password=nats_cluster.password(BRIDGE_USER),
                         ack_timeout_s=2) as publisher:
        publisher.ensure_stream(3)
        entries = [LedgerEntry("trade", "q-1", {"i": 1}, ["q-1"])]
        assert publisher.publish(entries) == 1
        nats_cluster.stop_server(1)
        nats_cluster.stop_server(2)
        lonely = [LedgerEntry("trade", "q-2", {"i": 2}, ["q-2"])]
        with pytest.raises(StreamUnavailableError, match="no quorum"):
            publisher.publish(lonely)
        nats_cluster.start_server(1, wait=False)
        nats_cluster.start_server(2, wait=False)
        nats_cluster.wait_healthy()
        wait_until(lambda: _publishes(publisher, lonely), timeout=60,
                   message="publishing after quorum returned")
    count, found = stream_records(nats_cluster)
    assert found == {"q-1", "q-2"} and count.duplicated == 0


def _publishes(publisher: StreamPublisher, entries) -> bool:
    try:
        publisher.publish(entries)
    except StreamUnavailableError:
        return False
    return True


def test_bridge_holds_trades_unacknowledged_without_quorum_and_lands_all_after(
        nats_cluster, fresh_broker, tmp_path):
    service = jetstream_bridge(nats_cluster, tmp_path / "bridge")
    try:
        service.start_mqtt("127.0.0.1", fresh_broker.port)
        wait_until(lambda: service.mqtt.connected, message="bridge on MQTT", timeout=60)
        before = trades(50, first=2000)
        publish_mqtt(fresh_broker.port, [json.dumps(t).encode() for t in before])
        wait_until(lambda: service.mqtt.acked == 50, message="first 50 acknowledged", timeout=60)

        nats_cluster.stop_server(0)
        nats_cluster.stop_server(2)
        during = trades(100, first=3000)
        publish_mqtt(fresh_broker.port, [json.dumps(t).encode() for t in during])
        wait_until(lambda: service.ledger.failed_attempts >= 2, message="publishes failing", timeout=60)
        status = service.health()["ordering"]
        assert service.mqtt.acked == 50                 # nothing acknowledged without quorum
        assert status["pending"] > 0 and status["unavailable_s"] is not None
        assert "no acknowledgement" in status["last_error"] or "unavailable" in \
            status["last_error"]

        nats_cluster.start_server(0, wait=False)
        nats_cluster.start_server(2, wait=False)
        wait_until(lambda: service.mqtt.acked == 150, timeout=120,
                   message="all 150 trades acknowledged after quorum returned")
        assert service.health()["ordering"]["unavailable_s"] is None
    finally:
        service.close()
    count, found = stream_records(nats_cluster)
    assert {t["trade_id"] for t in before + during} <= found
    assert count.entries == 450 and count.duplicated == 0
