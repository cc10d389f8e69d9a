"""The ledger's NATS cluster against real nats-server processes: users, permissions, the
R3 stream and de-duplication of a re-published batch."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest

from service_base.nats_cluster import AUDITOR_USER, BRIDGE_USER, node_user
from service_base.testing import free_port, tracepay_command
from trace_ledger import LedgerEntry
from trace_ledger.stream import STREAM, StreamPublisher, StreamUnavailableError, batch_body
from trace_ledger.stream_audit import count_stream, read_stream

pytestmark = pytest.mark.slow  # nats-server processes


def _entries(prefix: str, count: int) -> list[LedgerEntry]:
    return [LedgerEntry("trade", f"{prefix}-{i}", {"n": i}, [f"key-{i}"], None)
            for i in range(count)]


def _publisher(cluster) -> StreamPublisher:
    return StreamPublisher(cluster.servers, user=BRIDGE_USER,
                           password=cluster.password(BRIDGE_USER), ack_timeout_s=3)


def _audit(cluster):
    return count_stream(read_stream(cluster.servers, user=AUDITOR_USER,
                                    password=cluster.password(AUDITOR_USER)))


async def _connect_as(cluster, user: str, errors: list[Exception]):
    async def on_error(exc: Exception) -> None:
        errors.append(exc)
    return await nats.connect(servers=cluster.servers, user=user,
                              password=cluster.password(user), error_cb=on_error,
                              max_reconnect_attempts=1)


def test_cluster_files_name_servers_and_users_without_passwords(nats_cluster):
    description = json.loads((nats_cluster.data_dir / "cluster.json").read_text())
    assert description["servers"] == nats_cluster.servers and len(description["servers"]) == 3
    assert set(description["users"]) == {"bridge", "auditor", "node-production_base",
                                         "node-wholesale_market", "node-retail_market"}
    for user, entry in description["users"].items():
        secret_file = nats_cluster.password_file(user)
        assert entry["password_file"] == str(secret_file)
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        password = nats_cluster.password(user)
        for index in range(3):  # servers keep only the bcrypt hash
            conf = (nats_cluster.server_dir(index) / "nats-server.conf").read_text()
            assert password not in conf
            assert stat.S_IMODE((nats_cluster.server_dir(index) / "nats-server.conf")
                                .stat().st_mode) == 0o600
    assert password not in (nats_cluster.data_dir / "cluster.json").read_text()


def test_bridge_creates_an_r3_stream_and_a_republished_batch_is_dropped(nats_cluster):
    with _publisher(nats_cluster) as publisher:
        info = publisher.ensure_stream(replicas=3)
        assert info.config.num_replicas == 3
        entries = _entries("t", 50)
        first = publisher.publish(entries)
        again = publisher.publish(entries)            # a retry after a lost ack
        other = publisher.publish(_entries("u", 5))
    assert again == first and other == first + 1
    count, found = _audit(nats_cluster)
    assert (count.messages, count.entries, count.duplicated) == (2, 55, 0)
    assert found == {f"t-{i}" for i in range(50)} | {f"u-{i}" for i in range(5)}
    # every server holds the stream, one leader and two current replicas
    states = [nats_cluster.stream_state(i) for i in range(3)]
    assert all(state and state["messages"] == 2 for state in states)
    cluster = states[0]["cluster"]
    assert cluster["leader"] and len(cluster["replicas"]) == 2


def test_wrong_password_is_refused(nats_cluster):
    async def attempt():
        await nats.connect(servers=nats_cluster.servers, user=BRIDGE_USER, password="guess",
                           max_reconnect_attempts=0, allow_reconnect=False, connect_timeout=2)
    with pytest.raises((nats.errors.Error, OSError)):
        asyncio.run(attempt())


def test_a_node_user_may_not_publish_to_the_stream(nats_cluster):
    with _publisher(nats_cluster) as publisher:
        publisher.ensure_stream(replicas=3)
        publisher.publish(_entries("t", 3))
    user = node_user("retail_market")
    batch_id, body = batch_body(_entries("forged", 2))

    async def forge():
        errors: list[Exception] = []
        connection = await _connect_as(nats_cluster, user, errors)
        js = connection.jetstream(timeout=2)
        with pytest.raises((nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError)):
            await js.publish("ledger.tx.market", body, headers={"Nats-Msg-Id": batch_id})
        await connection.close()
        return errors
    errors = asyncio.run(forge())
    assert any("permissions violation" in str(exc).lower() and "ledger.tx.market" in str(exc)
               for exc in errors), errors
    count, found = _audit(nats_cluster)
    assert count.messages == 1 and not any(r.startswith("forged") for r in found)


def test_a_node_user_may_not_create_or_change_the_stream(nats_cluster):
    async def create():
        errors: list[Exception] = []
        connection = await _connect_as(nats_cluster, node_user("production_base"), errors)
        js = connection.jetstream(timeout=2)
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError,
                            nats.js.errors.Error)):
            await js.add_stream(name=STREAM, subjects=["ledger.tx.>"])
        await connection.close()
        return errors
    errors = asyncio.run(create())
    assert any("permissions violation" in str(exc).lower() for exc in errors), errors


def test_a_node_reads_through_its_own_durable_consumer_only(nats_cluster):
    with _publisher(nats_cluster) as publisher:
        publisher.ensure_stream(replicas=3)
        sequences = [publisher.publish(_entries(f"b{n}", 2)) for n in range(3)]

    async def follow():
        errors: list[Exception] = []
        connection = await _connect_as(nats_cluster, node_user("wholesale_market"), errors)
        js = connection.jetstream(timeout=3)
        subscription = await js.pull_subscribe("ledger.tx.>", durable="node-wholesale_market",
                                               stream=STREAM)
        messages = await subscription.fetch(3, timeout=5)
        for message in messages:
            await message.ack()
        seen = [message.metadata.sequence.stream for message in messages]
        with pytest.raises((nats.errors.TimeoutError, nats.js.errors.Error)):
            await js.pull_subscribe("ledger.tx.>", durable="node-retail_market", stream=STREAM)
        await connection.close()
        return seen, errors
    seen, errors = asyncio.run(follow())
    assert seen == sequences
    assert any("permissions violation" in str(exc).lower() and "node-retail_market" in str(exc)
               for exc in errors), errors


def test_publishing_without_a_stream_fails_cleanly(nats_server):
    with _publisher(nats_server) as publisher, pytest.raises(StreamUnavailableError):
        publisher.publish(_entries("t", 1))


def test_single_server_variant_takes_an_r1_stream(nats_server):
    assert nats_server.replicas == 1 and len(nats_server.servers) == 1
    with _publisher(nats_server) as publisher:
        assert publisher.ensure_stream(replicas=1).config.num_replicas == 1
        assert publisher.publish(_entries("t", 2)) == 1
        assert publisher.ensure_stream(replicas=1).state.messages == 1   # idempotent


def test_tracepay_nats_runs_the_cluster_with_the_stream_and_stops_it_on_sigterm(tmp_path):
    ports = [free_port() for _ in range(3)]
    command = tracepay_command("nats", "--data", str(tmp_path / "nats"),
                               "--ports", ",".join(map(str, ports)))
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)
    try:
        first_line = process.stdout.readline()
        started = json.loads(first_line)
        assert started["servers"] == [f"nats://127.0.0.1:{port}" for port in ports]
        assert started["stream"] == {"replicas": 3, "messages": 0}
        description = json.loads((tmp_path / "nats" / "cluster.json").read_text())
        password = Path(description["users"]["bridge"]["password_file"]).read_text().strip()
        with StreamPublisher(started["servers"], user="bridge", password=password) as publisher:
            assert publisher.publish(_entries("cli", 3)) == 1
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    for pid in started["pids"]:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_tracepay_nats_wants_all_three_tls_files_or_none(tmp_path):
    from click.testing import CliRunner

    from tracepay.nats_cluster import nats_command

    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    result = CliRunner().invoke(nats_command, ["--data", str(tmp_path / "n"), "--tls-ca", str(ca)])
    assert result.exit_code == 2 and "--tls-cert" in result.output
