"""Where the bridge's intake spends its CPU: cProfile on the writer thread, real code path.

Builds the same market as ``bench/bridge_intake.py``, submits every trade through the
bridge's one writer exactly as MQTT and HTTP do, and profiles only the writer thread (a job
switches the profiler on as the first thing the writer runs, another switches it off
after the last trade). Prints one JSON line: trades, CPU µs per trade of each of the
process's threads (read from ``/proc/self/task``; the ledger's node writers run beside the
writer), and the writer's functions with the most cumulative and own time, in µs per
trade. ``--out`` keeps the pstats file; ``--no-profile`` gives the thread CPU without the
profiler's overhead.

    .venv/bin/python bench/bridge_profile.py --trades 5000 --top 25
    .venv/bin/python bench/bridge_profile.py --trades 5000 --no-profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from bench.bridge_intake import market_bridge, market_trades  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _name(func: tuple[str, int, str]) -> str:
    path, line, name = func
    root = str(Path(__file__).resolve().parent.parent) + "/"
    return f"{path.replace(root, '')}:{line}:{name}" if line else name


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by thread name."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        name = names.get(int(task.name), "other")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICKS
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=5_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", help="write the pstats file here")
    parser.add_argument("--no-profile", action="store_true",
                        help="thread CPU only, without the profiler")
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    trades = market_trades(key, args.trades)
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        service = market_bridge(tmp, key)
        if not args.no_profile:
            service.writer.call(profiler.enable)
        cpu_before = thread_cpu_s()
        futures = [service.writer.submit(lambda t=t: service.intake.trade(t)) for t in trades]
        for future in futures:
            future.result(600)
        service.writer.call(profiler.disable)
        cpu_after = thread_cpu_s()
        service.close()
    per_trade = 1e6 / len(trades)
    threads = {name: round((seconds - cpu_before.get(name, 0.0)) * per_trade, 1)
               for name, seconds in sorted(cpu_after.items(), key=lambda kv: -kv[1])}
    if args.no_profile:
        print(json.dumps({"benchmark": "bridge_profile", "trades": len(trades),
                          "cpu_us_per_trade": round(sum(threads.values()), 1),
                          "thread_cpu_us_per_trade": threads}))
        return
    if args.out:
        profiler.dump_stats(args.out)
    stats = pstats.Stats(profiler)
    rows = stats.stats  # type: ignore[attr-defined]
    cumulative = sorted(rows.items(), key=lambda item: item[1][3], reverse=True)[:args.top]
    own = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)[:args.top]
    print(json.dumps({
        "benchmark": "bridge_profile", "trades": len(trades),
        "cpu_us_per_trade": round(sum(threads.values()), 1),
        "thread_cpu_us_per_trade": threads,
        "profiled_us_per_trade": round(stats.total_tt * per_trade, 1),  # type: ignore[attr-defined]
        "cumulative_us_per_trade": {_name(f): round(v[3] * per_trade, 1) for f, v in cumulative},
        "own_us_per_trade": {_name(f): round(v[2] * per_trade, 1) for f, v in own},
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
