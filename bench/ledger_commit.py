"""Ledger commit throughput: trades/s committed to all three nodes, signed and Merkle-rooted.

Builds trade-shaped entries first (the bridge's work, not timed), then times submitting
them in batches and cutting blocks until the last block is on every node. Prints one JSON
object. Example:

    .venv/bin/python bench/ledger_commit.py --trades 100000
    .venv/bin/python bench/ledger_commit.py --trades 100000 --node-processes
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger_records import trade_entries  # noqa: E402

from trace_ledger import Ledger, LedgerEntry  # noqa: E402
from trace_ledger.ledger import SWITCH_INTERVAL_S  # noqa: E402

FABRIC_TPS = 250


def run(trades: int, block_max: int, batch: int, data_dir: Path,
        node_processes: bool = False, entries: Sequence[LedgerEntry] | None = None) -> dict:
    """``entries``: commit these (the entries of ``trades`` trades) instead of one
    trade-shaped entry per trade."""
    entries = list(trade_entries(0, trades)) if entries is None else list(entries)
    # The entries stand in for what the bridge hands over a batch at a time; built all at
    # once they are 100,000 long-lived objects that Python's full collections would walk
    # again and again during the timed run (about 3 us per trade): set them aside.
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)  # as the bridge's process runs the ledger
    with Ledger.open(data_dir, block_max=block_max, block_timeout_s=60,
                     node_processes=node_processes) as ledger:
        nodes = [writer.pid for writer in (ledger._writers or {}).values()]
        nodes_cpu_started = sum(_cpu_seconds(pid) for pid in nodes)
        started, cpu_started = time.perf_counter(), time.process_time()
        for start in range(0, len(entries), batch):
            ledger.submit(entries[start:start + batch])
        ledger.flush()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        nodes_cpu = sum(_cpu_seconds(pid) for pid in nodes) - nodes_cpu_started
        head = ledger.head()
    rate = trades / seconds
    return {"bench": "ledger_commit", "trades": trades, "committed": head["trades"],
            "blocks": head["height"], "block_max": block_max, "nodes": 3,
            "signatures_per_block": 4, "node_processes": node_processes,
            "seconds": round(seconds, 3),
            "cpu_seconds_this_process": round(cpu_seconds, 3),
            "cpu_seconds_node_processes": round(nodes_cpu, 3),
            # CPU per trade over every process: the figure the machine's load does not move
            # much, for comparing changes; 2 idle cores commit at most 2e6 / this per second
            "cpu_us_per_trade": round((cpu_seconds + nodes_cpu) / trades * 1e6, 1),
            "main_process_cpu_us_per_trade": round(cpu_seconds / trades * 1e6, 1),
            "trades_per_s": round(rate), "ratio_vs_fabric_250": round(rate / FABRIC_TPS, 1),
            "load_avg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a (node) process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--block-max", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=2000, help="entries per submit call")
    parser.add_argument("--node-processes", action="store_true",
                        help="each organisation's node writes in a process of its own")
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args(argv)
    if args.data_dir:
        result = run(args.trades, args.block_max, args.batch, args.data_dir,
                     args.node_processes)
    else:
        with tempfile.TemporaryDirectory(prefix="ledger-commit-") as tmp:
            result = run(args.trades, args.block_max, args.batch, Path(tmp),
                         args.node_processes)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
