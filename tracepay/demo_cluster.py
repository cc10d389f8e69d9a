"""The demo's ledger on its real topology: three ``nats-server`` processes ordering the
``LEDGER`` stream, and one ``tracepay ledger-node`` process per organisation following it.

Each node has its own directory, key, NATS user and read API; the bridge publishes to the
stream and reads from the nodes. The trust file pins the nodes' public keys, read from
their key files as soon as the nodes made them (never keys served with the data).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from service_base.nats_cluster import (
    BRIDGE_USER,
    LEDGER_ORGS,
    NatsCluster,
    nats_server_binary,
    node_user,
)
from service_base.testing import ServiceProcess, free_port, tracepay_command, wait_for_http

__all__ = ["LedgerCluster", "NATS_MISSING", "describe_ledger"]

#: Starts of the NATS servers, or of one node, on fresh ports when a port picked free was
#: taken before the process bound it (other programs on the machine connect and listen too).
START_ATTEMPTS = 3

NATS_MISSING = ("nats-server not found: the demo orders its ledger on a three-server NATS "
                "JetStream cluster. Install it (scripts/install-system-packages.sh, Debian "
                "package nats-server; or set TRACEPAY_NATS_SERVER) or run `tracepay demo "
                "--solo` for the in-process ledger")


@dataclass
class LedgerCluster:
    """The NATS cluster and the organisations' nodes of one demo, under ``data_dir``."""

    data_dir: Path
    orgs: tuple[str, ...] = LEDGER_ORGS
    nats: NatsCluster | None = None
    nodes: dict[str, ServiceProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def check_available() -> None:
        """Refuse early, saying what to do, when there is no nats-server to run."""
        binary = nats_server_binary()
        if binary is None or shutil.which(binary) is None:
            raise RuntimeError(NATS_MISSING)

    def node_dir(self, org: str) -> Path:
        return self.data_dir / "nodes" / org

    def node_url(self, org: str) -> str:
        return f"http://127.0.0.1:{self.ports[org]}"

    @property
    def node_urls(self) -> list[str]:
        return [self.node_url(org) for org in self.orgs]

    def start_servers(self) -> LedgerCluster:
        """The three servers, and the stream (so every node finds it). Needs nothing else
        of the demo: it may run while the other services start."""
        from .nats_cluster import create_stream

        self.check_available()
        for attempt in range(1, START_ATTEMPTS + 1):
            cluster = NatsCluster(self.data_dir / "nats", size=3, orgs=self.orgs)
            self.nats = cluster
            try:
                cluster.start()
                break
            except RuntimeError as exc:
                if attempt == START_ATTEMPTS or not _port_taken(str(exc)):
                    raise
                for index in range(cluster.size):  # nothing stored yet: start afresh
                    shutil.rmtree(cluster.server_dir(index), ignore_errors=True)
        create_stream(cluster)
        return self

    def start_nodes(self, gateway_key_file: Path, *, log: Any = None) -> LedgerCluster:
        """The nodes' processes side by side, then until every read API answers. A node
        whose port was taken meanwhile starts again on another; one that exits otherwise
        or stays silent for 60 s stops the demo with its log's tail."""
        say = log or (lambda _text: None)
        for org in self.orgs:
            self._start_node(org, gateway_key_file)
        for org in self.orgs:
            for attempt in range(1, START_ATTEMPTS + 1):
                node = self.nodes[org]
                try:
                    wait_for_http(f"{self.node_url(org)}/healthz", 60, node.process)
                    break
                except (TimeoutError, RuntimeError) as exc:
                    if attempt < START_ATTEMPTS and _port_taken(node.log_tail()):
                        node.stop()
                        self._start_node(org, gateway_key_file)
                        continue
                    raise RuntimeError(f"ledger node {org}: {exc}\n--- {node.log_path} "
                                       f"---\n{node.log_tail()}") from exc
            say(f"ledger node {org} on {self.node_url(org)} ({self.node_dir(org)})")
        return self

    def _start_node(self, org: str, gateway_key_file: Path) -> None:
        assert self.nats is not None
        self.ports[org] = port = free_port()
        user = node_user(org)
        argv = tracepay_command(
            "ledger-node", "--org", org, "--data", str(self.node_dir(org)),
            "--nats", ",".join(self.nats.servers), "--user", user,
            "--password-file", str(self.nats.password_file(user)),
            "--gateway-key", str(gateway_key_file), "--http-port", str(port))
        self.nodes[org] = ServiceProcess(
            argv, log_path=self.data_dir / "logs" / f"ledger-node-{org}.log").start()

    def bridge_args(self) -> list[str]:
        """The bridge's flags for this cluster: publish as ``bridge``, read the nodes."""
        assert self.nats is not None
        return ["--ordering", "jetstream", "--nats", ",".join(self.nats.servers),
                "--nats-user", BRIDGE_USER,
                "--nats-password-file", str(self.nats.password_file(BRIDGE_USER)),
                "--nodes", ",".join(self.node_urls)]

    def pin_keys(self, trust_file: Path) -> None:
        """Deployment's one moment of trust: each node's public key, from its key file."""
        pairs = [arg for org in self.orgs for arg in ("--node", f"{org}={self.node_dir(org)}")]
        completed = subprocess.run(tracepay_command("ledger", "node-trust", *pairs, "--out",
                                                    str(trust_file)),
                                   capture_output=True, text=True, timeout=120)
        if completed.returncode != 0:
            raise RuntimeError(f"could not pin the nodes' keys: {completed.stderr.strip()}")

    def heads(self) -> dict[str, dict[str, Any] | None]:
        """Every node's signed head from its own read API (None: it did not answer)."""
        found: dict[str, dict[str, Any] | None] = {}
        for org in self.orgs:
            try:
                found[org] = requests.get(self.node_url(org) + "/v1/head", timeout=5).json()
            except (requests.RequestException, ValueError):
                found[org] = None
        return found

    def stream_last_seq(self) -> int:
        """The last sequence in the stream, as the first healthy server holds it."""
        assert self.nats is not None
        for index in range(self.nats.size):
            try:
                state = self.nats.stream_state(index)
            except (requests.RequestException, ValueError):
                continue
            if state is not None:
                return int(state.get("last_seq", 0))
        raise RuntimeError("no nats-server answered for the LEDGER stream")

    def wait_in_step(self, timeout_s: float = 60.0) -> dict[str, dict[str, Any] | None]:
        """Until every node has committed the whole stream (or ``timeout_s``); the heads."""
        target = self.stream_last_seq()
        deadline = time.monotonic() + timeout_s
        while True:
            heads = self.heads()
            if all(h and h.get("stream_seq", 0) >= target for h in heads.values()):
                return heads
            if time.monotonic() > deadline:
                return heads
            time.sleep(0.1)

    def alive(self, org: str) -> bool:
        process = self.nodes.get(org)
        return bool(process and process.process and process.process.poll() is None)

    def describe(self) -> dict[str, Any]:
        """Who runs the ledger: the servers and every node's pid, URL and directory."""
        servers = []
        if self.nats is not None:
            servers = [{"url": url, "pid": self.nats.pid(index),
                        "data_dir": str(self.nats.server_dir(index))}
                       for index, url in enumerate(self.nats.servers)]
        return {"nats_servers": servers,
                "ledger_nodes": [{"org": org, "pid": self.nodes[org].pid,
                                  "url": self.node_url(org), "data_dir": str(self.node_dir(org)),
                                  "alive": self.alive(org)} for org in self.orgs
                                 if org in self.nodes]}

    def stop_nodes(self) -> None:
        for org in list(self.nodes):
            self.nodes[org].stop()

    def stop(self) -> None:
        self.stop_nodes()
        if self.nats is not None:
            self.nats.stop()


def describe_ledger(summary: dict[str, Any]) -> list[str]:
    """For a person: which ordering ran, and each server and node with pid, URL and files
    (``summary`` holds ``ordering`` and, on JetStream, ``LedgerCluster.describe()``)."""
    if summary.get("ordering") != "jetstream":
        return ["ledger ordering: solo (in the bridge's process)"]
    lines = ["ledger ordering: jetstream (3 nats-server, one node per organisation)"]
    lines += [f"  nats-server pid {server['pid']}  {server['url']}  {server['data_dir']}"
              for server in summary.get("nats_servers", [])]
    for node in summary.get("ledger_nodes", []):
        root = f"  root {node['root'][:16]}... height {node['height']}" if node.get("root") \
            else ""
        lines.append(f"  ledger node {node['org']:<17} pid {node['pid']}  {node['url']}  "
                     f"{node['data_dir']}{root}")
    return lines


def _port_taken(text: str) -> bool:
    return "address already in use" in text.lower()
