"""The demo's view of the ledger: follow paid sales onto it, and verify it at rest.

At rest means as an auditor finds it: with the solo ledger, ``tracepay ledger verify``
over the bridge's directory; on JetStream, every node caught up with the whole stream,
their signed heads compared (same blocks, same roots), then ``tracepay ledger
verify-nodes`` over the nodes' own directories against their pinned keys.

The watcher asks the bridge's public trace API (as a shopper's phone would) for each paid
sale until it answers with the proof of that sale's trade (the trade is in a block), and
takes the time a sale reached the ledger from the block that
holds it (``time_ms`` in the signed block header), not from when the watcher happened to
look: polling speed does not distort the charge-to-ledger figure.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from service_base.testing import tracepay_command

__all__ = ["LedgerWatcher", "OnLedger", "verify_ledger", "verify_nodes", "wait_for_traces",
           "verify_at_rest"]


@dataclass(frozen=True)
class OnLedger:
    """What the run keeps of one sale's trace (not the whole trace: 10,000 of them add up)."""

    charge_to_ledger_ms: float | None
    paid_to_ledger_ms: float | None
    reaches_a_farm: bool


def _on_ledger(trace: dict[str, Any], charged_ms: int, paid_ms: int) -> OnLedger:
    trade_id = trace.get("record", {}).get("trade_id")
    block_ms = next((proof["block"]["header"].get("time_ms")
                     for proof in trace.get("proofs", [])
                     if proof.get("leaf", {}).get("record_id") == trade_id), None)
    def since(start_ms: int) -> float | None:
        return float(block_ms - start_ms) if block_ms is not None and start_ms else None

    farm = any(link.get("seller", {}).get("org") == "production_base"
               for link in trace.get("chain", []))
    return OnLedger(since(charged_ms), since(paid_ms), farm)


#: Trace requests the watcher keeps in flight: on JetStream one trace is several requests
#: from the bridge to a node, and one at a time the watcher would fall behind the sales.
WATCHER_THREADS = 4


def _proven(trace: dict[str, Any]) -> bool:
    """The trace carries the proof of its own trade: the trade is in a block. (The bridge
    answers a trace from its index as soon as the ordering took the trade; on JetStream
    that is before any node has cut the block holding it.)"""
    trade_id = trace.get("record", {}).get("trade_id")
    return any(proof.get("leaf", {}).get("record_id") == trade_id
               for proof in trace.get("proofs", []))


class LedgerWatcher:
    """Background threads polling the trace API for every code they are given."""

    def __init__(self, bridge_url: str, *, settle_s: float = 0.2,
                 on_found: Callable[[int], None] | None = None,
                 threads: int = WATCHER_THREADS) -> None:
        self.bridge_url = bridge_url
        self.on_found = on_found
        self.settle_s = settle_s
        self._pending: deque[tuple[str, int, int, float]] = deque()
        self._found: dict[str, OnLedger] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._loop, name=f"ledger-watcher-{n}",
                                          daemon=True) for n in range(threads)]
        self._local = threading.local()  # a requests.Session is not shared across threads
        self._sessions: list[requests.Session] = []

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False
            with self._cond:
                self._sessions.append(session)
        return session

    def add(self, trace_code: str, charged_ms: int = 0, paid_ms: int = 0) -> None:
        """Follow ``trace_code``; the times (wall-clock ms, 0 unknown) it was charged and paid."""
        with self._cond:
            self._pending.append((trace_code, charged_ms, paid_ms,
                                  time.monotonic() + self.settle_s))
            self._cond.notify()

    def _next(self) -> tuple[str, int, int, float] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait(0.5)
            if self._stopping:
                return None
            return self._pending.popleft()

    def _loop(self) -> None:
        while (item := self._next()) is not None:
            code, charged_ms, paid_ms, not_before = item
            wait = not_before - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            trace = self._fetch(code)
            with self._cond:
                if trace is None:
                    self._pending.append((code, charged_ms, paid_ms,
                                          time.monotonic() + self.settle_s))
                else:
                    self._found[code] = _on_ledger(trace, charged_ms, paid_ms)
                    self._cond.notify_all()
                count = len(self._found)
            if trace is not None and self.on_found:
                self.on_found(count)

    def _fetch(self, code: str) -> dict[str, Any] | None:
        try:
            answer = self._session().get(f"{self.bridge_url}/v1/trace/{code}", timeout=10)
        except requests.RequestException:
            return None
        if answer.status_code != 200:
            return None
        trace = answer.json()
        return trace if _proven(trace) else None

    def wait_for(self, count: int, deadline: float) -> bool:
        """Block until ``count`` codes are on the ledger or ``deadline`` (monotonic)."""
        with self._cond:
            while len(self._found) < count and time.monotonic() < deadline:
                self._cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
            return len(self._found) >= count

    def found(self) -> dict[str, OnLedger]:
        with self._cond:
            return dict(self._found)

    def latencies_ms(self, since: str = "charge") -> list[float]:
        """Every found sale's time to the ledger from its ``charge`` or its ``paid`` result."""
        values = (getattr(seen, f"{since}_to_ledger_ms") for seen in self.found().values())
        return sorted(value for value in values if value is not None)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=15)
        for session in self._sessions:
            session.close()


def wait_for_traces(bridge_url: str, trace_codes: list[str],
                    deadline: float) -> dict[str, OnLedger]:
    """Until each code's trace answers or ``deadline`` (monotonic); the ones found."""
    watcher = LedgerWatcher(bridge_url, settle_s=0.0)
    watcher.start()
    try:
        for code in trace_codes:
            watcher.add(code)
        watcher.wait_for(len(trace_codes), deadline)
        return watcher.found()
    finally:
        watcher.stop()


def verify_ledger(bridge_dir: Path, trust_file: Path,
                  checkpoint_file: Path | None = None) -> dict[str, Any]:
    """Run ``tracepay ledger verify`` as a user would, against the pinned keys (and the
    checkpoints of earlier runs, when given); its JSON and exit status."""
    extra = ["--checkpoints", str(checkpoint_file)] if checkpoint_file else []
    return _run_verify("verify", "--data-dir", str(bridge_dir), "--trust", str(trust_file),
                       *extra)


def verify_nodes(node_dirs: dict[str, Path], trust_file: Path) -> dict[str, Any]:
    """Run ``tracepay ledger verify-nodes`` over the organisations' node directories, each
    against its key pinned in ``trust_file``; its JSON and exit status."""
    pairs = [arg for org, path in node_dirs.items() for arg in ("--node", f"{org}={path}")]
    return _run_verify("verify-nodes", "--trust", str(trust_file), *pairs)


def _run_verify(*args: str) -> dict[str, Any]:
    completed = subprocess.run(tracepay_command("ledger", *args),
                               capture_output=True, text=True, timeout=900)
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        report = {"output": completed.stdout[-2000:], "stderr": completed.stderr[-2000:]}
    return {"ok": completed.returncode == 0, "report": report}


def verify_at_rest(system: Any) -> dict[str, Any]:
    """Verify the demo's ledger once the bridge has stopped; the summary's ledger members.

    ``system`` is a started :class:`~tracepay.demo_system.DemoSystem`. On JetStream the
    nodes are stopped here, after their heads were read, so they are verified at rest too.
    """
    cluster = system.cluster
    if cluster is None:
        verification = verify_ledger(system.data_dir / "bridge", system.trust_file,
                                     system.data_dir / "ledger-checkpoints.json")
        out: dict[str, Any] = {"ordering": "solo"}
    else:
        heads = cluster.wait_in_step()
        described = cluster.describe()  # pids and liveness while the nodes still run
        for node in described["ledger_nodes"]:
            head = heads.get(node["org"]) or {}
            node.update({name: head.get(name) for name in
                         ("height", "size", "root", "block_hash", "stream_seq")})
        cluster.stop_nodes()
        tops = {(h["height"], h["block_hash"], h["root"]) if h else None
                for h in heads.values()}
        out = {"ordering": "jetstream", **described,
               "ledger_roots_equal": len(tops) == 1 and None not in tops}
        verification = verify_nodes({org: cluster.node_dir(org) for org in cluster.orgs},
                                    system.trust_file)
    out["ledger_verified"] = verification["ok"]
    out["ledger_trust_file"] = str(system.trust_file)
    if not verification["ok"]:
        out["ledger_problems"] = verification["report"]
    return out
