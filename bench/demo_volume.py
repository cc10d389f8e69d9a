"""Benchmark: the whole demo at volume, through the real payment path.

Runs ``tracepay demo --headless --sales N --json`` exactly as a user would (every service
its own process, one headless terminal, N shoppers each from its own loopback address
paying at the sandbox platform's checkout, every paid sale followed onto the ledger, the
ledger verified) and prints ONE JSON object: the demo's own figures (``paid_per_s``,
``charge_to_ledger_ms`` and ``paid_to_ledger_ms`` p50/p99), the CPU seconds each service
process used per paid sale (what bounds the rate on this machine; ``ledger-node`` the
three organisations' nodes, ``nats-server`` the three servers ordering them, ``ledger`` the
verification at the end, ``demo`` the shoppers and the watcher), which ``ordering`` ran,
and the ratio of ``paid_per_s`` to the goal of 200 paid sales a second.

Example:
    .venv/bin/python bench/demo_volume.py                 # 10,000 sales, JetStream ordering
    .venv/bin/python bench/demo_volume.py --sales 2000 --solo
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service_base.testing import tracepay_command  # noqa: E402

GOAL_PAID_PER_S = 200
SERVICES = ("gateway", "sandbox-platform", "bridge", "consumer", "terminal", "ledger-node",
            "ledger", "demo")
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_by_service(root_pid: int) -> dict[str, float]:
    """CPU seconds so far of every process below ``root_pid``, by the service it runs."""
    children: dict[int, list[int]] = {}
    info: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        ppid, cpu = int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS
        words = [a.decode(errors="replace") for a in argv]
        name = next((w for w in words if w in SERVICES), None)
        if name is None and any("mosquitto" in w for w in words[:1]):
            name = "mosquitto"
        if name is None and words[0].endswith("nats-server"):
            name = "nats-server"
        children.setdefault(ppid, []).append(int(entry.name))
        info[int(entry.name)] = (name or "other", cpu)
    totals: dict[str, float] = {}
    stack = [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        if pid in info:
            name, cpu = info[pid]
            totals[name] = totals.get(name, 0.0) + cpu
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sales", type=int, default=10_000)
    parser.add_argument("--timeout", type=int, default=None,
                        help="passed to the demo (default: the demo's own for --sales)")
    parser.add_argument("--solo", action="store_true",
                        help="the demo's in-process solo ledger instead of JetStream")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tracepay-bench-demo-") as tmp:
        argv = tracepay_command("demo", "--headless", "--sales", str(args.sales), "--json",
                                "--data-dir", str(Path(tmp) / "demo"))
        if args.timeout:
            argv += ["--timeout", str(args.timeout)]
        if args.solo:
            argv.append("--solo")
        started = time.monotonic()
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True)
        peak: dict[str, float] = {}
        done = threading.Event()

        def sample() -> None:
            # Each service's CPU only grows; its last reading before it exits is its total.
            while not done.wait(0.5):
                for name, seconds in _cpu_by_service(process.pid).items():
                    peak[name] = max(peak.get(name, 0.0), seconds)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stdout, _ = process.communicate()
        done.set()
        sampler.join()
        wall = time.monotonic() - started
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    summary = json.loads(lines[-1]) if lines else {}
    paid = summary.get("paid") or 0
    rate = summary.get("paid_per_s") or 0.0
    print(json.dumps({
        "bench": "demo_volume", "sales": args.sales, "exit_code": process.returncode,
        "ordering": summary.get("ordering"),
        "paid": paid, "on_ledger": summary.get("on_ledger"), "failed": summary.get("failed"),
        "ledger_verified": summary.get("ledger_verified"),
        "paid_per_s": rate, "ratio_vs_goal_200": round(rate / GOAL_PAID_PER_S, 2),
        "charge_to_ledger_ms": summary.get("charge_to_ledger_ms"),
        "paid_to_ledger_ms": summary.get("paid_to_ledger_ms"),
        "cpu_ms_per_paid_sale": {name: round(seconds * 1000 / paid, 2)
                                 for name, seconds in sorted(peak.items())} if paid else {},
        "cores": os.cpu_count(), "run_s": summary.get("run_s"), "wall_s": round(wall, 1),
    }))


if __name__ == "__main__":
    main()
