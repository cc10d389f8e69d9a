"""The demo's ledger cluster (``tracepay.demo_cluster``): three real nats-servers and the
three organisations' node processes, started again on fresh ports when a port picked free
was taken by someone else before the process bound it (a busy machine does that)."""

from __future__ import annotations

import itertools
import socket

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import service_base.nats_cluster as nats_cluster
import tracepay.demo_cluster as demo_cluster
from market_protocol import ORGS
from market_protocol.signing import public_key_pem
from service_base.testing import free_port

pytestmark = pytest.mark.skipif(nats_cluster.nats_server_binary() is None,
                                reason="nats-server is not installed")


def _taken_then_free(real):  # noqa: ANN001, ANN202
    """A port picker whose first answer is a port someone already listens on."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    answers = itertools.chain([holder.getsockname()[1]], iter(real, None))
    return holder, lambda: next(answers)


def test_servers_and_nodes_start_again_on_fresh_ports_when_one_was_taken(tmp_path,
                                                                        monkeypatch):
    gateway_key = tmp_path / "gateway_public.pem"
    gateway_key.write_text(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    cluster = demo_cluster.LedgerCluster(tmp_path / "demo")
    nats_holder, picker = _taken_then_free(nats_cluster._free_port)
    node_holder, node_picker = _taken_then_free(free_port)
    try:
        monkeypatch.setattr(nats_cluster, "_free_port", picker)
        cluster.start_servers()
        assert cluster.nats is not None
        assert nats_holder.getsockname()[1] not in cluster.nats.ports
        assert all(cluster.nats.is_healthy(index) for index in range(3))
        monkeypatch.setattr(demo_cluster, "free_port", node_picker)
        cluster.start_nodes(gateway_key)
        assert node_holder.getsockname()[1] not in cluster.ports.values()
        heads = cluster.heads()
        assert set(heads) == set(ORGS) and all(head is not None for head in heads.values())
        described = cluster.describe()
        assert [node["org"] for node in described["ledger_nodes"]] == list(ORGS)
        assert all(node["alive"] for node in described["ledger_nodes"])
        assert len(described["nats_servers"]) == 3
        assert "--nodes" in cluster.bridge_args()
    finally:
        cluster.stop()
        nats_holder.close()
        node_holder.close()
    for url in cluster.node_urls:
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/healthz", timeout=2)


def test_without_nats_server_the_cluster_says_to_install_it_or_pass_solo(tmp_path,
                                                                         monkeypatch):
    monkeypatch.setenv("TRACEPAY_NATS_SERVER", str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="--solo"):
        demo_cluster.LedgerCluster.check_available()
