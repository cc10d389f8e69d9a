"""The three organisations' ledger nodes of ``bench/ledger_cluster.py``, as real processes.

Each node is ``tracepay ledger-node --org <org> --data <dir>`` with its own NATS user,
its own key and store, and its read API on a free loopback port, started the way
``tests/test_ledger_node.py`` starts them. The fleet reads the nodes only through what they
serve (``/healthz``, ``/v1/head``) and, once a phase is over, through their own stores
opened read-only; the CPU of each process comes from ``/proc``.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import requests

from market_protocol import ORGS
from service_base.nats_cluster import NatsCluster, node_user
from service_base.testing import ServiceProcess, free_port, tracepay_command
from trace_ledger.node_store import STORE_NAME, NodeStore

__all__ = ["NodeFleet", "HeightPoller", "cpu_seconds"]

ROOT = Path(__file__).resolve().parent.parent.parent


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process so far (0 for a process that is gone)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class NodeFleet:
    """One node process per organisation, following ``cluster``'s LEDGER stream."""

    def __init__(self, root: Path, cluster: NatsCluster, gateway_pem: Path,
                 orgs: Sequence[str] = ORGS) -> None:
        self.root, self.cluster, self.gateway_pem = root, cluster, gateway_pem
        self.orgs = list(orgs)
        self.ports = {org: free_port() for org in self.orgs}
        self.procs: dict[str, ServiceProcess] = {}
        self._session = requests.Session()
        #: CPU seconds of node processes that were killed (their /proc entry is gone)
        self.cpu_of_dead: dict[str, float] = dict.fromkeys(self.orgs, 0.0)

    def url(self, org: str) -> str:
        return f"http://127.0.0.1:{self.ports[org]}"

    def data(self, org: str) -> Path:
        return self.root / org

    def start(self, org: str) -> None:
        argv = tracepay_command(
            "ledger-node", "--org", org, "--data", str(self.data(org)),
            "--nats", ",".join(self.cluster.servers), "--user", node_user(org),
            "--password-file", str(self.cluster.password_file(node_user(org))),
            "--gateway-key", str(self.gateway_pem), "--http-port", str(self.ports[org]))
        self.procs[org] = ServiceProcess(argv, log_path=self.root / f"{org}.out",
                                         health_url=self.url(org) + "/healthz",
                                         env={"PYTHONPATH": str(ROOT)},
                                         startup_timeout=60).start()

    def start_all(self) -> None:
        for org in self.orgs:
            self.start(org)

    def kill(self, org: str) -> None:
        """kill -9 the node's process group: a crash, its store as it was."""
        self.cpu_of_dead[org] += cpu_seconds(self.procs[org].pid)
        self.procs[org].kill()

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.stop()

    def pid(self, org: str) -> int | None:
        return self.procs[org].pid if org in self.procs else None

    def cpu(self) -> dict[str, float]:
        return {org: self.cpu_of_dead[org] + cpu_seconds(self.pid(org)) for org in self.orgs}

    # -- what the nodes serve ------------------------------------------------------------
    def get(self, org: str, path: str, timeout: float = 5.0) -> dict[str, Any] | None:
        try:
            return self._session.get(self.url(org) + path, timeout=timeout).json()
        except (requests.RequestException, ValueError):
            return None

    def heads(self) -> dict[str, dict[str, Any] | None]:
        return {org: self.get(org, "/v1/head") for org in self.orgs}

    def wait_seq(self, seq: int, timeout: float = 180.0, orgs: Sequence[str] | None = None
                 ) -> float:
        """Wait until every node (of ``orgs``) committed stream sequence ``seq``; returns
        the perf_counter time it was first seen."""
        deadline = time.monotonic() + timeout
        waiting = list(orgs or self.orgs)
        while waiting:
            health = self.get(waiting[0], "/healthz", timeout=2)
            if health and health["stream_seq"] >= seq:
                waiting.pop(0)
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {waiting[0]} did not reach stream seq {seq}: "
                                   f"{health}\n{self.procs[waiting[0]].log_tail(20)}")
            time.sleep(0.02)
        return time.perf_counter()

    def roots_identical(self) -> tuple[bool, dict[str, Any]]:
        """Every node's signed tree head names the same height, block hash, root and size."""
        heads = self.heads()
        views = {org: None if head is None else
                 (head["height"], head["block_hash"], head["root"], head["size"],
                  head["stream_seq"]) for org, head in heads.items()}
        first = views[self.orgs[0]]
        same = first is not None and all(view == first for view in views.values())
        return same, {org: {"height": v[0], "root": v[2][:16], "size": v[3], "stream_seq": v[4]}
                      if v else None for org, v in views.items()}

    # -- the stores themselves -----------------------------------------------------------
    def count(self, expected: Collection[str]) -> dict[str, Any]:
        """Per node, read from its own store (read-only): leaves per record id, expected
        record ids on no leaf (lost), record ids on more than one leaf (duplicated), and the
        transactions it refused. ``lost``/``duplicated`` are the worst node's."""
        nodes: dict[str, dict[str, int]] = {}
        for org in self.orgs:
            store = NodeStore(org, self.data(org) / STORE_NAME, readonly=True)
            counts: Counter[str] = Counter()
            try:
                for height, _header in store.block_headers():
                    row = store.block(height)
                    if row is not None:
                        counts.update(leaf[1] for leaf in store.block_leaves(height, row[4]))
                refused = store.query("SELECT COUNT(*) FROM node_refused")[0][0]
            finally:
                store.close()
            nodes[org] = {"leaves": sum(counts.values()),
                          "lost": sum(1 for record_id in expected if record_id not in counts),
                          "duplicated": sum(n - 1 for n in counts.values() if n > 1),
                          "refused": refused}
        return {"per_node": nodes, "lost": max(n["lost"] for n in nodes.values()),
                "duplicated": max(n["duplicated"] for n in nodes.values()),
                "refused": max(n["refused"] for n in nodes.values())}


class HeightPoller:
    """Polls every node's ``/healthz`` every ``interval_s`` on a thread of its own and
    remembers, per node, when each stream sequence was first seen committed: the commit
    time of a batch is then the latest of the three (a block signed by every node)."""

    def __init__(self, fleet: NodeFleet, interval_s: float = 0.02) -> None:
        self.fleet, self.interval_s = fleet, interval_s
        self.samples: dict[str, list[tuple[float, int]]] = {org: [] for org in fleet.orgs}
        self.health: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="height-poller")
        self._session = requests.Session()

    def start(self) -> HeightPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            for org in self.fleet.orgs:
                try:
                    health = self._session.get(self.fleet.url(org) + "/healthz",
                                               timeout=1).json()
                except (requests.RequestException, ValueError):
                    continue  # a node that is down
                seen = time.perf_counter()
                self.health[org] = health
                samples = self.samples[org]
                if not samples or health["stream_seq"] > samples[-1][1]:
                    samples.append((seen, health["stream_seq"]))
            self._stop.wait(self.interval_s)

    def committed_at(self, seq: int) -> float | None:
        """When every node was first seen at or past ``seq`` (None: not all were)."""
        times = []
        for samples in self.samples.values():
            found = next((at for at, committed in samples if committed >= seq), None)
            if found is None:
                return None
            times.append(found)
        return max(times)
