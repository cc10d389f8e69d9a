"""``tracepay demo --headless``: N simulated sales, each paid by its own shopper, to the ledger.

A headless terminal process rings up the sales and reports each one on stdout; every sale
gets a shopper (its own loopback address, honouring ``Retry-After``) who pays at the
sandbox platform's checkout; a watcher follows each paid sale to the ledger. The run ends
as soon as every sale is settled one way or the other (paid and on the ledger, or its
shopper failed, or the gateway gave it a final unpaid status), not at the timeout, and
every failure is reported with its reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pos_terminal.outbox import FINAL_STATUSES
from service_base.testing import tracepay_command

from .demo_ledger import LedgerWatcher
from .demo_market import STALL, seed_supply_chain
from .demo_progress import Progress
from .demo_shoppers import SimulatedShopper, loopback_address
from .demo_system import DemoSystem

__all__ = ["run_headless", "SHOPPER_THREADS"]

#: Shoppers paying at once: enough to keep the gateway and the platform busy on two cores.
SHOPPER_THREADS = 16


@dataclass
class _Sale:
    seq: int
    trace_code: str
    charged_ms: int
    status: str | None = None
    shopper: dict[str, Any] | None = None
    paid_at: float | None = None

    @property
    def settled(self) -> bool:
        """Nothing more will happen to this sale that the run should wait for."""
        if self.status == "paid":
            return True
        if self.shopper is not None and not self.shopper["ok"]:
            return True
        return self.status in FINAL_STATUSES


class _Run:
    def __init__(self, sales: int, watcher: LedgerWatcher, progress: Progress) -> None:
        self.sales = sales
        self.watcher = watcher
        self.progress = progress
        self.by_id: dict[str, _Sale] = {}
        self.lock = threading.Lock()
        self.settled = 0
        self.all_settled = threading.Event()
        self.terminal_done = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=SHOPPER_THREADS)
        self.first_charge: float | None = None

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "charged":
            sale = _Sale(event["seq"], event["trace_code"], int(time.time() * 1000))
            with self.lock:
                index = len(self.by_id)  # a distinct address per shopper
                self.by_id[event["sale_id"]] = sale
                if self.first_charge is None:
                    self.first_charge = time.monotonic()
            self.pool.submit(self._shop, event["sale_id"], sale, event["qr_url"], index)
            self.progress.charged()
        elif kind == "result":
            self._update(event["sale_id"], status=event["status"])
        elif kind == "done":
            self.terminal_done.set()

    def _shop(self, sale_id: str, sale: _Sale, qr_url: str, index: int) -> None:
        shopper = SimulatedShopper(f"shopper-{sale.seq:05d}", loopback_address(index))
        self._update(sale_id, shopper=shopper.pay(qr_url))

    def _update(self, sale_id: str, *, status: str | None = None,
                shopper: dict[str, Any] | None = None) -> None:
        with self.lock:
            sale = self.by_id.get(sale_id)
            if sale is None:
                return
            was_settled = sale.settled
            if status is not None:
                sale.status = status
            if shopper is not None:
                sale.shopper = shopper
            newly_paid = status == "paid" and sale.paid_at is None
            if newly_paid:
                sale.paid_at = time.monotonic()
            if sale.settled and not was_settled:
                self.settled += 1
                if self.settled >= self.sales:
                    self.all_settled.set()
        if newly_paid:
            self.watcher.add(sale.trace_code, sale.charged_ms, int(time.time() * 1000))
            self.progress.paid()
        if shopper is not None and not shopper["ok"]:
            self.progress.failed()

    def failures(self) -> list[dict[str, Any]]:
        out = []
        with self.lock:
            for sale in sorted(self.by_id.values(), key=lambda s: s.seq):
                if sale.status == "paid":
                    continue
                shopper = sale.shopper or {}
                out.append({"seq": sale.seq, "status": sale.status,
                            "step": shopper.get("step"), "http_status": shopper.get("status"),
                            "reason": shopper.get("reason") or (
                                "shopper still paying" if sale.shopper is None
                                else f"payment {sale.status or 'without a result'}")})
        return out


def _read_events(process: subprocess.Popen, on_event: Any) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        line = line.strip()
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            on_event(json.loads(line))


def _stop(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


def run_headless(system: DemoSystem, sales: int, *, timeout_s: float, say: Any,
                 show_progress: bool = False) -> dict[str, Any]:
    """Drive ``sales`` simulated sales to the ledger; return the summary (not yet verified).

    First the stall's stock arrives from a farm through a wholesaler (two paid trades on
    the ledger, sized for ``sales``), so every shopper's sale traces back to the farm.
    """
    upstream = seed_supply_chain(system, system.bridge_admin_token, sales=sales)
    say(f"supply chain on the ledger: {upstream}")
    enrolment = system.enrol(STALL.enrolment_body())
    argv = tracepay_command("terminal", "--headless", "--data-dir",
                            str(system.data_dir / "terminal"),
                            "--enrol-code", enrolment["enrolment_code"], "--gateway-url",
                            system.urls["gateway"], "--simulate-sales", str(sales),
                            "--wait-results", str(int(timeout_s)))
    progress = Progress(sales, enabled=show_progress)
    watcher = LedgerWatcher(system.urls["bridge"], on_found=progress.on_ledger)
    run = _Run(sales, watcher, progress)
    started = time.monotonic()
    deadline = started + timeout_s
    with (system.data_dir / "logs" / "terminal.log").open("ab") as log, progress:
        terminal = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        reader = threading.Thread(target=_read_events, args=(terminal, run.on_event),
                                  daemon=True)
        reader.start()
        watcher.start()
        ended = "all_settled"
        try:
            while not run.all_settled.wait(0.2):
                if time.monotonic() > deadline:
                    ended = "timeout"
                    break
                if terminal.poll() is not None and not run.terminal_done.is_set():
                    reader.join(timeout=5)
                    if not run.all_settled.is_set():
                        ended = "terminal_stopped"
                        say(f"the terminal stopped (exit {terminal.returncode}): see "
                            f"{system.data_dir / 'logs' / 'terminal.log'}")
                        break
            paid_codes = [s.trace_code for s in run.by_id.values() if s.status == "paid"]
            watcher.wait_for(len(paid_codes), deadline + 30)
        finally:
            _stop(terminal)
            reader.join(timeout=5)
            run.pool.shutdown(wait=True, cancel_futures=True)
            watcher.stop()
    summary = _summary(run, watcher, upstream, sales, started, system)
    summary["ended"] = ended
    return summary


def _summary(run: _Run, watcher: LedgerWatcher, upstream: dict[str, str], sales: int,
             started: float, system: DemoSystem) -> dict[str, Any]:
    paid = [s for s in run.by_id.values() if s.status == "paid"]
    last_paid = max((s.paid_at for s in paid if s.paid_at), default=None)
    window = (last_paid - run.first_charge) if last_paid and run.first_charge else 0.0
    from_charge, from_paid = watcher.latencies_ms("charge"), watcher.latencies_ms("paid")
    failures = run.failures()
    found = watcher.found()
    refused = sum((s.shopper or {}).get("refusals", 0) for s in run.by_id.values())
    return {
        "sales": sales,
        "charged": len(run.by_id),
        "paid": len(paid),
        "on_ledger": len(found),
        "failed": len(failures),
        "failure_reasons": dict(Counter(f["reason"] for f in failures).most_common(10)),
        "failures": failures[:20],
        "shopper_retries_after_429": refused,
        "paid_per_s": round(len(paid) / window, 1) if window > 0 else None,
        "charge_to_ledger_ms": {"p50": _percentile(from_charge, 50),
                                "p99": _percentile(from_charge, 99)},
        "paid_to_ledger_ms": {"p50": _percentile(from_paid, 50),
                              "p99": _percentile(from_paid, 99)},
        "run_s": round(time.monotonic() - started, 2),
        "supply_chain": upstream,
        "traced_to_farm": sum(seen.reaches_a_farm for seen in found.values()),
        "trace_urls": [f"{system.urls['consumer']}/trace/{code}" for code in
                       list(found)[:20]],
    }
