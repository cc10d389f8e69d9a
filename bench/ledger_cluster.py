"""Ledger ordering throughput: trades/s published into the R3 ``LEDGER`` stream of a real
three-server NATS cluster, through the bridge's own StreamLedger and StreamPublisher.

Each trade is three entries, as the bridge makes them (the public trade of about 1 KB, the
parties' private record, one allocation). Trades are handed over a writer batch at a time
(``--batch`` trades, as the bridge's writer takes what waits) and flushed: the flush
publishes batches of ``--block-max`` entries and returns once JetStream acknowledged each.
Afterwards the stream is read back as the auditor user and every trade's entries counted
(``lost``, ``duplicated``). The in-process solo ledger (bench/ledger_commit.py's ``run``,
the same trades) is the baseline of ``ratio_vs_solo``. ``--faults`` kills -9 the stream
leader a third of the way in and restarts it at two thirds.

The nodes' side (blocks signed by every organisation, their roots, commit latency from
publish to a block on all three) is measured by :func:`node_figures`, which returns None
until the node processes are wired in. Example:

    .venv/bin/python bench/ledger_cluster.py                 # small: about a minute
    .venv/bin/python bench/ledger_cluster.py --trades 200000 --faults
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger_commit import run as run_solo  # noqa: E402
from ledger_records import trade_entry  # noqa: E402

from service_base.nats_cluster import AUDITOR_USER, BRIDGE_USER, NatsCluster  # noqa: E402
from trace_ledger import LedgerEntry  # noqa: E402
from trace_ledger.stream import StreamPublisher  # noqa: E402
from trace_ledger.stream_audit import count_stream, read_stream  # noqa: E402
from trace_ledger.stream_ledger import StreamLedger  # noqa: E402


def trade_group(i: int) -> list[LedgerEntry]:
    """The three entries of trade ``i``."""
    public = trade_entry(i)
    trade_id = public.record_id
    lot = public.trace_keys[-1]
    private = LedgerEntry("trade_private", f"{trade_id}/private",
                          {"schema": "tracepay.trade_private/1", "trade_id": trade_id,
                           "payer_id": f"payer-{i % 5000}", "amount_fen": 381,
                           "salt": "s" * 43}, [f"{trade_id}/private", trade_id],
                          ("wholesale_market", "retail_market"))
    allocation = LedgerEntry("allocation", f"alloc:{trade_id}/1",
                             {"schema": "tracepay.allocation/1", "lot_id": f"{trade_id}/1",
                              "draws": [{"lot_id": lot, "amount": 500}], "unmatched": 0},
                             [f"alloc:{trade_id}/1", f"{trade_id}/1", lot])
    return [public, private, allocation]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def node_figures(cluster: NatsCluster, expected_record_ids: set[str]) -> dict[str, Any] | None:
    """Hook for the node side: each organisation's node process following the stream.

    To return ``{"lost": n, "duplicated": n, "roots_identical": bool,
    "commit_latency_ms": {"p50", "p99"}, "catch_up_s": s}`` counted on every node's store.
    None while no node processes run in this benchmark.
    """
    return None


class _TimedPublisher:
    """Wraps the publisher to time every publish from hand-over to JetStream's ack."""

    def __init__(self, publisher: StreamPublisher) -> None:
        self.publisher = publisher
        self.latencies_ms: list[float] = []

    def publish_body(self, batch_id: str, body: bytes) -> int:
        started = time.perf_counter()
        sequence = self.publisher.publish_body(batch_id, body)
        self.latencies_ms.append((time.perf_counter() - started) * 1000)
        return sequence

    def __getattr__(self, name: str) -> Any:
        return getattr(self.publisher, name)


def run(trades: int, batch: int, block_max: int, data_dir: Path, faults: bool) -> dict:
    groups = [trade_group(i) for i in range(trades)]
    expected = {entry.record_id for group in groups for entry in group}
    gc.freeze()
    with NatsCluster(data_dir / "nats", size=3) as cluster:
        publisher = StreamPublisher(cluster.servers, user=BRIDGE_USER,
                                    password=cluster.password(BRIDGE_USER), ack_timeout_s=2)
        publisher.ensure_stream(3)
        timed = _TimedPublisher(publisher)
        ledger = StreamLedger(timed, None, journal_path=data_dir / "journal.json",
                              batch_max=block_max, retry_initial_s=0.05, retry_max_s=0.5)
        killed = restarted = None
        fault_window: dict[str, float] = {}
        started = time.perf_counter()
        cpu_started = time.process_time()
        for start in range(0, trades, batch):
            if faults and killed is None and start >= trades // 3:
                killed = _leader(cluster)
                cluster.kill(killed)
                fault_window["start"], fault_window["from"] = time.perf_counter(), start
            if faults and killed is not None and restarted is None and start >= 2 * trades // 3:
                cluster.start_server(killed, wait=False)
                restarted = time.perf_counter()
                fault_window["end"], fault_window["to"] = restarted, start
            for group in groups[start:start + batch]:
                ledger.submit(group)
            ledger.flush()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        catch_up_s = None
        if restarted is not None:
            catch_up_s = _wait_caught_up(cluster, killed, restarted)
        count, found = count_stream(read_stream(cluster.servers, user=AUDITOR_USER,
                                                password=cluster.password(AUDITOR_USER)))
        nodes = node_figures(cluster, expected)
        failed_attempts = ledger.failed_attempts
        ledger.close()
    solo = run_solo(trades, 2000, 2000, data_dir / "solo")
    rate = trades / seconds
    result = {
        "bench": "ledger_cluster", "trades": trades, "entries": len(expected),
        "servers": 3, "replicas": 3, "batch_trades": batch, "block_max_entries": block_max,
        "stream_messages": count.messages, "seconds": round(seconds, 3),
        "trades_per_s": round(rate),
        "publish_ack_ms": {"p50": round(statistics.median(timed.latencies_ms), 2),
                           "p99": round(_percentile(timed.latencies_ms, 0.99), 2)},
        "lost": sum(1 for group in groups if any(e.record_id not in found for e in group)),
        "duplicated": count.duplicated, "malformed": count.malformed,
        "publish_retries": failed_attempts,
        "bench_process_cpu_us_per_trade": round(cpu_seconds / trades * 1e6, 1),
        "baseline": "bench/ledger_commit.py (solo, in process)",
        "baseline_trades_per_s": solo["trades_per_s"],
        "ratio_vs_solo": round(round(rate) / solo["trades_per_s"], 2),
        "nodes": nodes,
        "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}
    if faults:
        during = fault_window["to"] - fault_window["from"]
        result["trades_per_s_during_faults"] = round(
            during / (fault_window["end"] - fault_window["start"]))
        result["catch_up_s"] = catch_up_s
    return result


def _leader(cluster: NatsCluster) -> int:
    state = cluster.stream_state(0) or {}
    name = (state.get("cluster") or {}).get("leader") or "nats-1"
    return int(name.rsplit("-", 1)[1]) - 1


def _wait_caught_up(cluster: NatsCluster, index: int, since: float,
                    timeout: float = 120.0) -> float:
    """Seconds from the restart until the server's copy of the stream reaches the end."""
    other = (index + 1) % 3
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            mine, theirs = cluster.stream_state(index), cluster.stream_state(other)
        except Exception:  # noqa: BLE001 - the restarted server is still coming up
            mine = theirs = None
        if mine and theirs and mine["last_seq"] == theirs["last_seq"]:
            return round(time.perf_counter() - since, 2)
        time.sleep(0.05)
    raise TimeoutError(f"nats-server {index + 1} did not catch up within {timeout}s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500, help="trades per writer batch")
    parser.add_argument("--block-max", type=int, default=500, help="entries per message")
    parser.add_argument("--faults", action="store_true",
                        help="kill -9 the stream leader at 1/3, restart it at 2/3")
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)
    if args.data_dir:
        result = run(args.trades, args.batch, args.block_max, args.data_dir, args.faults)
    else:
        with tempfile.TemporaryDirectory(prefix="ledger-cluster-") as tmp:
            result = run(args.trades, args.batch, args.block_max, Path(tmp), args.faults)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
