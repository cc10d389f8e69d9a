"""The ledger's cluster with TLS, as docs/deploy.md configures it: clients must speak TLS
and check the servers' certificate, routes between servers use mutual TLS."""

from __future__ import annotations

import asyncio

import nats
import pytest
from bridge_jetstream_support import jetstream_bridge, trades

from ledger_bridge.app import create_app
from ledger_bridge.ordering import nats_tls_context
from service_base.nats_cluster import BRIDGE_USER
from service_base.testing import make_test_tls, running_nats_cluster
from trace_ledger import LedgerEntry
from trace_ledger.stream import StreamPublisher, StreamUnavailableError

pytestmark = pytest.mark.slow  # nats-server processes


@pytest.fixture
def tls_cluster(tmp_path):
    files = make_test_tls(tmp_path / "tls")
    with running_nats_cluster(tmp_path / "nats", size=3, tls=files) as cluster:
        yield cluster


def test_bridge_publishes_over_tls_to_an_r3_stream_replicated_over_tls_routes(tls_cluster,
                                                                              tmp_path):
    assert all(url.startswith("tls://") for url in tls_cluster.servers)
    service = jetstream_bridge(tls_cluster, tmp_path / "bridge",
                               nats_tls_ca=str(tls_cluster.tls.ca_file))
    try:
        client = create_app(service).test_client()
        for trade in trades(3, first=7000):
            assert client.post("/v1/trades", json=trade).json["status"] == "accepted"
    finally:
        service.close()
    states = [tls_cluster.stream_state(i) for i in range(3)]
    assert all(state and state["messages"] == 3 for state in states)   # routes carry it
    count, _ = stream_records_tls(tls_cluster)
    assert count.entries == 9


def stream_records_tls(cluster):
    from trace_ledger.stream_audit import count_stream, read_stream

    context = nats_tls_context({"nats_tls_ca": str(cluster.tls.ca_file)})
    return count_stream(read_stream(cluster.servers, user="auditor",
                                    password=cluster.password("auditor"), tls=context))


def test_a_client_without_tls_is_refused(tls_cluster):
    async def plain():
        await nats.connect(servers=[url.replace("tls://", "nats://")
                                    for url in tls_cluster.servers],
                           user=BRIDGE_USER, password=tls_cluster.password(BRIDGE_USER),
                           allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)
    with pytest.raises(Exception):  # noqa: B017 - nats-py names the refusal differently by path
        asyncio.run(plain())


def test_a_server_certificate_from_another_ca_is_refused(tls_cluster, tmp_path):
    stranger = make_test_tls(tmp_path / "other-ca")
    context = nats_tls_context({"nats_tls_ca": str(stranger.ca_file)})
    with pytest.raises(StreamUnavailableError, match="cannot connect"):
        StreamPublisher(tls_cluster.servers, user=BRIDGE_USER,
                        password=tls_cluster.password(BRIDGE_USER), tls=context,
                        connect_timeout_s=5)
    # and the right CA works
    context = nats_tls_context({"nats_tls_ca": str(tls_cluster.tls.ca_file)})
    with StreamPublisher(tls_cluster.servers, user=BRIDGE_USER,
                         password=tls_cluster.password(BRIDGE_USER), tls=context) as publisher:
        publisher.ensure_stream(3)
        assert publisher.publish([LedgerEntry("trade", "tls-1", {"n": 1}, ["tls-1"])]) == 1
