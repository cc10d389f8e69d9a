"""The bridge with ``--ordering jetstream`` against real nats-server processes and a real
Mosquitto: every accepted trade's entries land on the R3 stream exactly once, an MQTT trade
is acknowledged only after the publish ack, a crash between publish and index commit
re-indexes instead of publishing again, and the solo mode is untouched."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests
from bridge_jetstream_support import (
    KEY,
    bridge_settings,
    jetstream_bridge,
    publish_mqtt,
    stream_records,
    trades,
)

from ledger_bridge.app import create_app
from ledger_bridge.intake import private_record_id
from market_protocol import signing
from service_base.testing import ServiceProcess, free_port, tracepay_command, wait_until
from trace_ledger import LedgerEntry
from trace_ledger.stream_ledger import StreamLedger

pytestmark = pytest.mark.slow  # bridge and NATS processes


def test_http_trades_land_on_the_stream_once_and_nothing_on_a_local_ledger(nats_cluster,
                                                                          tmp_path):
    service = jetstream_bridge(nats_cluster, tmp_path / "bridge")
    try:
        client = create_app(service).test_client()
        sent = trades(5)
        for trade in sent:
            answer = client.post("/v1/trades", json=trade)
            assert answer.status_code == 200 and answer.json["status"] == "accepted"
        again = client.post("/v1/trades", json=sent[0])      # a resend: the index knows it
        assert again.json["status"] == "duplicate"
        health = client.get("/healthz")
        assert health.status_code == 200
        ordering = health.json["ordering"]
        assert ordering["ordering"] == "jetstream" and ordering["pending"] == 0
        assert ordering["published_batches"] == 5
    finally:
        service.close()
    count, found = stream_records(nats_cluster)
    trade_ids = {trade["trade_id"] for trade in sent}
    assert trade_ids | {private_record_id(t) for t in trade_ids} <= found
    assert sum(1 for record in found if record.startswith("alloc:")) == 5
    assert (count.messages, count.entries, count.duplicated) == (5, 15, 0)
    assert not (tmp_path / "bridge" / "ledger").exists()


def test_a_rejected_trade_is_published_as_a_rejected_entry(nats_cluster, tmp_path):
    service = jetstream_bridge(nats_cluster, tmp_path / "bridge")
    try:
        forged = trades(1)[0]
        forged["seller"]["name"] = "Someone Else"           # the gateway's signature breaks
        answer = create_app(service).test_client().post("/v1/trades", json=forged)
        assert answer.status_code == 422 and answer.json["outcome"] == "rejected"
        record_id = answer.json["record_id"]
    finally:
        service.close()
    count, found = stream_records(nats_cluster)
    assert found == {record_id} and count.entries == 1


def test_reads_without_nodes_answer_503_not_500(nats_cluster, tmp_path):
    service = jetstream_bridge(nats_cluster, tmp_path / "bridge")
    try:
        client = create_app(service).test_client()
        answer = client.get("/v1/head")
        assert answer.status_code == 503 and answer.json["error"] == "no_ledger_nodes"
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json["ledger_height"] is None
    finally:
        service.close()


def test_mqtt_trades_are_acknowledged_after_the_publish_ack(nats_cluster, fresh_broker,
                                                            tmp_path):
    service = jetstream_bridge(nats_cluster, tmp_path / "bridge")
    acked_with_stream: list[int] = []
    publish_body = service.ledger.publisher.publish_body

    def spy(batch_id, body):
        sequence = publish_body(batch_id, body)
        acked_with_stream.append(service.mqtt.acked)       # MQTT acks before this ack
        return sequence
    service.ledger.publisher.publish_body = spy
    try:
        service.start_mqtt("127.0.0.1", fresh_broker.port)
        wait_until(lambda: service.mqtt.connected, message="bridge on MQTT", timeout=60)
        sent = trades(300, first=100)
        publish_mqtt(fresh_broker.port, [json.dumps(t).encode() for t in sent])
        wait_until(lambda: service.mqtt.acked == 300, message="300 MQTT acks", timeout=60)
    finally:
        service.close()
    count, found = stream_records(nats_cluster)
    assert {t["trade_id"] for t in sent} <= found
    assert count.entries == 900 and count.duplicated == 0
    # every publish ack came before the MQTT acks of its trades: after k publishes at most
    # the trades of the first k-1 batches can have been acknowledged
    assert acked_with_stream[0] == 0
    assert count.messages == len(acked_with_stream) < 300   # batched, not one per trade


def test_a_crash_between_publish_and_index_commit_reindexes_instead_of_republishing(
        nats_cluster, tmp_path):
    data_dir = tmp_path / "bridge"
    first, second = trades(2, first=500)
    service = jetstream_bridge(nats_cluster, data_dir)
    try:
        client = create_app(service).test_client()
        assert client.post("/v1/trades", json=first).json["status"] == "accepted"
        real_flush = service.ledger.flush

        def flush_then_crash():
            real_flush()                                   # on the stream ...
            raise RuntimeError("crash before the index commit")  # ... but never indexed
        service.ledger.flush = flush_then_crash
        with pytest.raises(RuntimeError, match="crash before the index commit"):
            service.writer.call(lambda: service.intake.trade(second))
    finally:
        service.close()
    before, _ = stream_records(nats_cluster)
    assert before.entries == 6

    service = jetstream_bridge(nats_cluster, data_dir)      # the restart
    try:
        client = create_app(service).test_client()
        assert client.post("/v1/trades", json=second).json["status"] == "duplicate"
        assert service.store.has_trade(second["trade_id"])   # re-indexed from the stream
        assert client.post("/v1/trades", json=first).json["status"] == "duplicate"
    finally:
        service.close()
    after, _ = stream_records(nats_cluster)
    assert (after.messages, after.entries, after.duplicated) == (2, 6, 0)


def test_stream_ledger_splits_large_queues_into_batches_deterministically(nats_cluster,
                                                                          tmp_path):
    from trace_ledger.stream import StreamPublisher

    password = nats_cluster.password("bridge")
    with StreamPublisher(nats_cluster.servers, user="bridge", password=password) as publisher:
        publisher.ensure_stream(3)
        ledger = StreamLedger(publisher, None, journal_path=tmp_path / "journal.json",
                              batch_max=100)
        entries = [LedgerEntry("trade", f"t-{i}", {"n": i}, [f"t-{i}"]) for i in range(250)]
        receipts = ledger.submit(entries)
        assert [r.status for r in receipts] == ["accepted"] * 250
        assert ledger.submit(entries[:1])[0].status == "duplicate"   # still queued
        assert ledger.pending() == 250
        ledger.flush()
        assert ledger.pending() == 0 and ledger.published_batches == 3
    count, _ = stream_records(nats_cluster)
    assert (count.messages, count.entries) == (3, 250)


def test_tracepay_bridge_jetstream_process_publishes_and_says_its_mode(nats_cluster, tmp_path):
    pem = tmp_path / "gateway.pem"
    pem.write_text(signing.public_key_pem(KEY.public_key()))
    port = free_port()
    settings = bridge_settings(nats_cluster, tmp_path / "bridge")
    command = tracepay_command(
        "bridge", "--port", str(port), "--data-dir", settings["data_dir"],
        "--gateway-public-key", str(pem), "--ordering", "jetstream",
        "--nats", settings["nats"], "--nats-user", "bridge",
        "--nats-password-file", settings["nats_password_file"])
    url = f"http://127.0.0.1:{port}"
    with ServiceProcess(command, log_path=tmp_path / "bridge.log",
                        health_url=f"{url}/healthz") as process:
        sent = trades(3, first=900)
        for trade in sent:
            assert requests.post(f"{url}/v1/trades", json=trade, timeout=30).status_code == 200
        assert requests.get(f"{url}/healthz", timeout=5).json()["ordering"]["last_seq"] == 3
    assert "(ordering: jetstream)" in process.log_path.read_text()
    _count, found = stream_records(nats_cluster)
    assert {t["trade_id"] for t in sent} <= found


def test_jetstream_mode_without_servers_is_a_usage_error(tmp_path):
    pem = tmp_path / "gateway.pem"
    pem.write_text(signing.public_key_pem(KEY.public_key()))
    result = subprocess.run(tracepay_command("bridge", "--ordering", "jetstream",
                                             "--gateway-public-key", str(pem),
                                             "--data-dir", str(tmp_path / "b")),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--nats" in result.stderr


def test_a_flush_given_up_at_shutdown_drops_its_queue_and_acknowledges_nothing(nats_server,
                                                                              tmp_path):
    import threading

    from trace_ledger.stream import StreamPublisher
    from trace_ledger.stream_ledger import StreamLedgerClosed

    publisher = StreamPublisher(nats_server.servers, user="bridge",
                                password=nats_server.password("bridge"), ack_timeout_s=1)
    publisher.ensure_stream(1)
    ledger = StreamLedger(publisher, None, journal_path=tmp_path / "journal.json",
                          retry_initial_s=0.05)
    nats_server.stop_server(0)  # from now on every publish goes unanswered, as without quorum
    ledger.submit([LedgerEntry("trade", "held-1", {"n": 1}, ["held-1"])])
    failure: list[BaseException] = []

    def flush():
        try:
            ledger.flush()
        except BaseException as exc:  # noqa: BLE001 - inspected below
            failure.append(exc)
    thread = threading.Thread(target=flush)
    thread.start()
    wait_until(lambda: ledger.failed_attempts >= 2, message="publishes failing", timeout=60)
    assert ledger.status()["last_error"] and ledger.pending() == 1
    ledger.stop_retrying()
    thread.join(10)
    assert isinstance(failure[0], StreamLedgerClosed)
    assert ledger.pending() == 0 and ledger.published_entries == 0
    ledger.close()
