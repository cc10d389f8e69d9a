"""End-to-end benchmark: terminals -> Mosquitto -> gateway -> bridge -> ledger, real processes.

Starts the services as the demo does (Mosquitto with its password file and ACL, the sandbox
platform, the gateway, the bridge, the consumer app: each its own process on loopback),
enrols N terminals and runs them in one fleet process
(``bench/pipeline_parts/terminal_fleet.py``: each terminal's real outbox and MQTT
uplink). Two runs, one JSON line:

* ``trade_path_per_s``: the terminals ring up sales with their uplinks off, every sale is
  paid at the sandbox platform and confirmed at the gateway (not timed); then the uplinks
  start, and the clock runs from the first publish to the last trade on the ledger: the
  gateway joins each sale with its payment and publishes the signed trade, the bridge
  matches it and the ledger commits it. Goal: 5,000/s.
* ``payment_path_per_s``: uplinks on, sales rung up and each paid by its own shopper
  (scan at the gateway, order created at the platform, pay, signed notify, join), from the
  first sale to the last trade on the ledger. Goal: 1,500/s.

For each run: CPU µs per trade of every process (``/proc/<pid>/stat``, the process and its
children), queue depth over time (sales in the terminals' outboxes, messages in the
gateway's outbox, jobs waiting for the bridge's writer, ledger entries not yet on every
node, trades on the ledger), and ``lost``/``duplicated``, counted on every ledger node's
own blocks against the sales that were paid (not taken from any counter).

    .venv/bin/python bench/pipeline.py                      # 50 terminals, 5,000 + 5,000
    .venv/bin/python bench/pipeline.py --large              # 100,000 + 100,000
    .venv/bin/python bench/pipeline.py --terminals 3 --trades 30 --payment-trades 30
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.pipeline_parts.ledger_count import count_trades_on_ledger  # noqa: E402
from tracepay.demo_shoppers import SimulatedShopper, loopback_address  # noqa: E402
from tracepay.demo_system import DemoSystem  # noqa: E402

GOAL_TRADE_PATH_PER_S = 5_000
GOAL_PAYMENT_PATH_PER_S = 1_500
SHOPPER_THREADS = 16
TICKS = os.sysconf("SC_CLK_TCK")
FLEET = Path(__file__).resolve().parent / "pipeline_parts" / "terminal_fleet.py"


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) of ``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


class Fleet:
    """The terminal fleet process, driven over stdin, followed over stdout."""

    def __init__(self, fleet_file: Path, log_path: Path) -> None:
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(FLEET), "--fleet-file", str(fleet_file)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                start_new_session=True)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.queued = 0
        self.on_charged: Any = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event["event"] == "depth":
                self.queued = event["queued"]
            elif event["event"] == "charged" and self.on_charged is not None:
                self.on_charged(event)
            else:
                self.events.put(event)
        self.events.put({"event": "exited"})

    def send(self, command: str, expect: str, timeout: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.wait(expect, timeout)

    def wait(self, expect: str, timeout: float) -> dict[str, Any]:
        event = self.events.get(timeout=timeout)
        if event["event"] != expect:
            raise RuntimeError(f"terminal fleet: expected {expect!r}, got {event}")
        return event

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(RuntimeError, queue.Empty, OSError):
                self.send("stop", "stopped", 30)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Pipeline:
    """The running system, its fleet, and what the benchmark watches of them."""

    def __init__(self, data_dir: Path, terminals: int) -> None:
        self.terminals = terminals
        # Its figures and its count of trades on every node read the solo ledger's files
        # (bench/ledger_cluster.py measures the JetStream ordering and its nodes).
        self.system = DemoSystem(data_dir, ordering="solo")
        self.fleet: Fleet | None = None
        try:
            self._start(data_dir)
        except BaseException:
            self.stop()
            raise

    def _start(self, data_dir: Path) -> None:
        # The fleet claims all its enrolments from one address within a minute, where a
        # market's terminals each claim once from their own: the per-address claim limit
        # is raised to fit (the environment reaches the gateway process). Every other limit
        # keeps its production default (the scan limit per device is the demo's).
        os.environ.setdefault("TRACEPAY_GATEWAY_CLAIM_LIMIT_PER_ADDRESS",
                              f"{max(30, 2 * self.terminals)}/minute")
        self.system.start()
        terminals = self.terminals
        fleet = {"gateway_url": self.system.urls["gateway"], "terminals": []}
        for index in range(terminals):
            answer = self.system.enrol({"merchant_id": f"stall-{index:03d}",
                                        "merchant_name": f"Stall {index}",
                                        "org": "retail_market"})
            fleet["terminals"].append({"data_dir": str(data_dir / "terminals" / f"t{index:03d}"),
                                       "enrolment_code": answer["enrolment_code"]})
        fleet_file = data_dir / "fleet.json"
        fleet_file.write_text(json.dumps(fleet))
        self.fleet = Fleet(fleet_file, data_dir / "logs" / "terminals.log")
        try:
            self.fleet.wait("ready", 120)
        except (RuntimeError, queue.Empty) as exc:
            log = (data_dir / "logs" / "terminals.log").read_text(errors="replace")
            raise RuntimeError(f"{exc}\n--- terminals.log ---\n{log[-3000:]}") from exc
        self.http = requests.Session()
        self.http.trust_env = False
        self.pids = {"terminals": self.fleet.process.pid,
                     "mosquitto": self.system.broker.process.pid,  # type: ignore[union-attr]
                     **{name: self.system.services[name].pid
                        for name in ("gateway", "platform", "bridge")}}

    def _health(self, name: str, http: requests.Session | None = None) -> dict[str, Any]:
        return (http or self.http).get(f"{self.system.urls[name]}/healthz", timeout=10).json()

    def ledger_trades(self) -> int:
        return self._health("bridge")["trades"]

    def depth(self, http: requests.Session) -> dict[str, int]:
        """Sales in the outboxes, the gateway's unpublished messages, jobs waiting for the
        bridge's writer, ledger entries not yet on every node, trades on the ledger."""
        bridge = self._health("bridge", http)
        return {"terminal_outboxes": self.fleet.queued,
                "gateway_outbox": self._health("gateway", http)["outbox_pending"],
                "bridge_writer_jobs": bridge.get("writer_backlog", 0),
                "ledger_pending_entries": bridge.get("pending", 0),
                "ledger_trades": bridge["trades"]}

    def cpu(self) -> dict[str, float]:
        """Each service's process tree; ``bench`` is this process alone (the shoppers, the
        sampling), not the services it started."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {**{name: tree_cpu_s(pid) for name, pid in self.pids.items() if pid},
                "bench": own.ru_utime + own.ru_stime}

    def wait_on_ledger(self, target: int, deadline: float) -> float:
        """Poll until the ledger holds ``target`` trades; the moment it did."""
        while True:
            trades = self.ledger_trades()
            if trades >= target:
                return time.monotonic()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{trades} of {target} trades on the ledger at the deadline")
            time.sleep(0.1)

    def pay(self, events: list[dict[str, Any]], offset: int) -> list[dict[str, Any]]:
        with ThreadPoolExecutor(SHOPPER_THREADS) as pool:
            return list(pool.map(lambda pair: self._shop(*pair), enumerate(events, offset)))

    def _shop(self, index: int, event: dict[str, Any]) -> dict[str, Any]:
        outcome = SimulatedShopper(f"shopper-{index}", loopback_address(index)).pay(
            event["qr_url"])
        return {**outcome, "sale_id": event["sale_id"]}

    def wait_confirmed(self, payment_ids: list[str], deadline: float) -> None:
        """Until the gateway has recorded every payment as paid (the notify arrived)."""
        waiting = list(payment_ids)
        while waiting:
            url = self.system.urls["gateway"]
            waiting = [p for p in waiting if self.http.get(
                f"{url}/v1/payments/{p}", timeout=10).json().get("status") != "paid"]
            if waiting and time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} payments not confirmed at the gateway")
            if waiting:
                time.sleep(0.2)

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.system.stop()


class DepthSampler:
    """Queue depths twice a second over one run, on its own thread (``ledger_trades``:
    trades committed since the run began)."""

    def __init__(self, pipe: Pipeline, baseline: int) -> None:
        self.pipe, self.baseline = pipe, baseline
        self.series: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        http = requests.Session()  # its own: a session is not shared between threads
        http.trust_env = False
        while True:
            now = time.monotonic()
            with contextlib.suppress(requests.RequestException):
                sample = self.pipe.depth(http)
                sample["ledger_trades"] -= self.baseline
                self.series.append({"t_s": round(now - self.t0, 2), **sample})
            if self._done.wait(0.5):
                return

    def stop(self) -> list[dict[str, Any]]:
        self._done.set()
        self._thread.join()
        return _thin(self.series)


def _thin(series: list[dict[str, Any]], points: int = 60) -> list[dict[str, Any]]:
    step = max(1, math.ceil(len(series) / points))
    return series[::step] + ([series[-1]] if series and (len(series) - 1) % step else [])


def _per_trade_us(before: dict[str, float], after: dict[str, float], trades: int
                  ) -> dict[str, float]:
    return {name: round((after[name] - before[name]) * 1e6 / trades, 1)
            for name in sorted(after) if trades}


def _report(outcomes: list[dict[str, Any]], seconds: float, cpu_before: dict[str, float],
            cpu_after: dict[str, float], series: list[dict[str, Any]]
            ) -> tuple[dict[str, Any], set[str]]:
    """One run's figures, and the sale ids that must be on the ledger (the paid ones)."""
    paid = [o for o in outcomes if o["ok"]]
    return {"trades": len(paid), "unpaid": len(outcomes) - len(paid),
            "seconds": round(seconds, 3),
            "per_s": round(len(paid) / seconds, 1) if seconds > 0 else None,
            "cpu_us_per_trade": _per_trade_us(cpu_before, cpu_after, len(paid)),
            "queue_depth": series}, {o["sale_id"] for o in paid}


def trade_path(pipe: Pipeline, trades: int, deadline: float) -> tuple[dict, set[str]]:
    per_terminal = math.ceil(trades / pipe.terminals)
    charged: list[dict[str, Any]] = []
    pipe.fleet.on_charged = charged.append
    pipe.fleet.send(f"charge {per_terminal}", "charged_all", deadline - time.monotonic())
    outcomes = pipe.pay(charged, 0)
    paid = [o for o in outcomes if o["ok"]]
    pipe.wait_confirmed([o["payment_id"] for o in paid], deadline)
    baseline = pipe.ledger_trades()
    cpu_before, t0 = pipe.cpu(), time.monotonic()
    sampler = DepthSampler(pipe, baseline)
    pipe.fleet.send("start", "started", 60)
    end = pipe.wait_on_ledger(baseline + len(paid), deadline)
    cpu_after = pipe.cpu()
    series = sampler.stop()
    seconds = end - t0
    return _report(outcomes, seconds, cpu_before, cpu_after, series)


def payment_path(pipe: Pipeline, trades: int, offset: int, deadline: float
                 ) -> tuple[dict, set[str]]:
    per_terminal = math.ceil(trades / pipe.terminals)
    pool = ThreadPoolExecutor(SHOPPER_THREADS)
    futures: list[Any] = []
    counter = itertools.count(offset)
    pipe.fleet.on_charged = lambda event: futures.append(
        pool.submit(pipe._shop, next(counter), event))
    baseline = pipe.ledger_trades()
    cpu_before, t0 = pipe.cpu(), time.monotonic()
    sampler = DepthSampler(pipe, baseline)
    pipe.fleet.send(f"charge {per_terminal}", "charged_all", deadline - time.monotonic())
    outcomes = [future.result() for future in list(futures)]
    pool.shutdown()
    paid = [o for o in outcomes if o["ok"]]
    end = pipe.wait_on_ledger(baseline + len(paid), deadline)
    cpu_after = pipe.cpu()
    series = sampler.stop()
    seconds = end - t0
    return _report(outcomes, seconds, cpu_before, cpu_after, series)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terminals", type=int, default=50)
    parser.add_argument("--trades", type=int, default=5_000,
                        help="trade path: sales paid before their terminals publish them")
    parser.add_argument("--payment-trades", type=int, default=5_000,
                        help="payment path: sales paid while the terminals publish")
    parser.add_argument("--large", action="store_true",
                        help="100,000 sales on each path (the sustained figure)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds for the whole run (default: from the sizes)")
    parser.add_argument("--data-dir", help="keep the services' data and logs here")
    args = parser.parse_args()
    if args.large:
        args.trades = args.payment_trades = 100_000
    timeout = args.timeout or 120 + (args.trades + args.payment_trades) / 20
    with tempfile.TemporaryDirectory(prefix="tracepay-bench-pipeline-") as tmp:
        data_dir = Path(args.data_dir or tmp)
        started = time.monotonic()
        deadline = started + timeout
        pipe = Pipeline(data_dir, args.terminals)
        try:
            trade, trade_ids = trade_path(pipe, args.trades, deadline)
            payment, payment_ids = payment_path(pipe, args.payment_trades, args.trades,
                                                deadline)
        finally:
            pipe.stop()
        ledger = count_trades_on_ledger(data_dir / "bridge", trade_ids | payment_ids)
    trade_rate, payment_rate = trade["per_s"] or 0.0, payment["per_s"] or 0.0
    print(json.dumps({
        "bench": "pipeline", "terminals": args.terminals,
        "trade_path_per_s": trade_rate,
        "trade_path_ratio_vs_goal_5000": round(trade_rate / GOAL_TRADE_PATH_PER_S, 3),
        "payment_path_per_s": payment_rate,
        "payment_path_ratio_vs_goal_1500": round(payment_rate / GOAL_PAYMENT_PATH_PER_S, 3),
        "lost": ledger["lost"], "duplicated": ledger["duplicated"],
        "ledger": ledger, "trade_path": trade, "payment_path": payment,
        "cores": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
        "wall_s": round(time.monotonic() - started, 1),
    }))


if __name__ == "__main__":
    main()
