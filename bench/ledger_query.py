"""Ledger queries at scale: trace lookups, the Bloom pre-check, full verification, memory.

Fills a ledger with ``--trades`` trade-shaped entries (or reuses one in ``--data-dir``),
then measures, and prints one JSON object:

* trace query latency (locate by trace code + get the record + its inclusion proof) over
  random present codes: p50 / p99 / max in ms;
* an absent code's lookup with the per-block Bloom pre-check and without it (every block's
  key index searched), and the ratio;
* a full verify of every node (seconds) and whether it passed;
* this process's resident memory: now (VmRSS) and peak (VmHWM).

Example (the full figure needs about 4.1 GB of disk: about 1,690 bytes per trade on each of the
three nodes):

    .venv/bin/python bench/ledger_query.py --trades 1000000 --data-dir var/bench-ledger
    .venv/bin/python bench/ledger_query.py --trades 20000          # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger_records import trade_entries, trade_entry  # noqa: E402

from trace_ledger import Ledger  # noqa: E402


def memory_mb() -> dict[str, float]:
    """Resident set now and at its peak, from /proc/self/status."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": found.get("VmRSS", 0.0), "peak_rss_mb": found.get("VmHWM", 0.0)}


def fill(ledger: Ledger, trades: int, chunk: int = 4_000) -> float:
    """Commit trades not yet on the ledger, in chunks so they never all sit in memory."""
    started, have = time.perf_counter(), ledger.head()["trades"]
    for start in range(have, trades, chunk):
        ledger.submit(list(trade_entries(start, min(chunk, trades - start))))
    ledger.flush()
    return time.perf_counter() - started


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def time_ms(call, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = call(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def trace_latencies(ledger: Ledger, trades: int, samples: int) -> dict[str, float]:
    rng = random.Random(7)
    total, found = [], 0
    for _ in range(samples):
        entry = trade_entry(rng.randrange(trades))
        code = entry.record["trace_code"]
        started = time.perf_counter()
        locations = ledger.locate(code)
        proofs = [ledger.proof(loc.record_id) for loc in locations]
        total.append((time.perf_counter() - started) * 1000)
        found += bool(proofs) and proofs[0]["leaf"]["record_id"] == entry.record_id
    return {"samples": samples, "found": found, "p50_ms": round(percentile(total, 0.5), 3),
            "p99_ms": round(percentile(total, 0.99), 3), "max_ms": round(max(total), 3),
            "mean_ms": round(statistics.fmean(total), 3)}


def absent_lookups(ledger: Ledger, samples: int) -> dict[str, float]:
    with_bloom, without = [], []
    for i in range(samples):
        code = f"absent-{i:06d}"
        with_bloom.append(time_ms(ledger.locate, code)[0])
        without.append(time_ms(ledger.locate, code, bloom=False)[0])
    mean_with, mean_without = statistics.fmean(with_bloom), statistics.fmean(without)
    return {"samples": samples, "with_bloom_us": round(mean_with * 1000, 1),
            "without_bloom_us": round(mean_without * 1000, 1),
            "speedup": round(mean_without / mean_with, 1)}


def run(trades: int, data_dir: Path, samples: int, block_max: int) -> dict:
    with Ledger.open(data_dir, block_max=block_max, block_timeout_s=60) as ledger:
        fill_seconds = fill(ledger, trades)
        head = ledger.head()
        result = {"bench": "ledger_query", "trades": head["trades"], "blocks": head["height"],
                  "fill_seconds": round(fill_seconds, 1)}
        result["trace_query"] = trace_latencies(ledger, head["trades"], samples)
        result["absent_lookup"] = absent_lookups(ledger, max(20, samples // 10))
        result.update(memory_mb())
        verify_ms, report = time_ms(ledger.verify)
        result["verify"] = {"seconds": round(verify_ms / 1000, 2), "ok": report.ok,
                            "records_checked": report.records_checked}
    result["load_avg_1m"] = round(os.getloadavg()[0], 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=1000, help="trace queries to time")
    parser.add_argument("--block-max", type=int, default=2000)
    parser.add_argument("--data-dir", type=Path, help="kept and reused; default: temporary")
    args = parser.parse_args(argv)
    if args.data_dir:
        result = run(args.trades, args.data_dir, args.samples, args.block_max)
    else:
        with tempfile.TemporaryDirectory(prefix="ledger-query-") as tmp:
            result = run(args.trades, Path(tmp), args.samples, args.block_max)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
