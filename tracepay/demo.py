"""``tracepay demo``: the whole system on one machine, on free loopback ports.

Starts the broker, the sandbox payment platform, the gateway, the ledger (three
``nats-server`` processes ordering the LEDGER stream and one ``tracepay ledger-node`` per
organisation; or, with ``--solo``, the solo ledger inside the bridge), the ledger bridge
and the consumer app as separate processes (the same processes a market would run), enrols
a demo stall, and either waits for Ctrl-C (interactive) or drives N simulated sales end to
end and reports one JSON object (``--headless``). Every process it starts, it stops.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from service_base.testing import ServiceProcess, tracepay_command

from .demo_cluster import describe_ledger
from .demo_ledger import verify_at_rest
from .demo_market import STALL, seed_supply_chain
from .demo_progress import wants_progress
from .demo_run import run_headless
from .demo_system import DemoSystem

__all__ = ["demo"]


@click.command("demo")
@click.option("--headless", is_flag=True, help="No window: run simulated sales and exit.")
@click.option("--sales", default=20, show_default=True, type=click.IntRange(1, 100_000),
              help="With --headless: how many simulated sales.")
@click.option("--json", "as_json", is_flag=True, help="With --headless: print one JSON object.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where every service keeps its files (default: a new var/demo/<time> "
                   "per run, or a temporary directory with --headless).")
@click.option("--timeout", "timeout_s", type=click.IntRange(1, 86_400),
              help="With --headless: the most seconds to wait for sales to be paid and on "
                   "the ledger (default: 300, plus 1 s per 20 sales). The run ends sooner, "
                   "as soon as every sale is paid or has failed.")
@click.option("--keep", is_flag=True, help="With --headless: keep the temporary data directory.")
@click.option("--no-terminal", is_flag=True, help="Interactive: do not open the terminal window.")
@click.option("--insecure-demo", is_flag=True,
              help="Without Mosquitto: run on the amqtt broker, which admits anyone (every "
                   "page says so).")
@click.option("--solo", is_flag=True,
              help="Keep the ledger inside the bridge's process (no nats-server, no node "
                   "processes) instead of the JetStream cluster and the three "
                   "organisations' nodes.")
def demo(headless: bool, sales: int, as_json: bool, data_dir: Path | None,
         timeout_s: int | None, keep: bool, no_terminal: bool, insecure_demo: bool,
         solo: bool) -> None:
    """Run the whole system on free loopback ports.

    Interactive (default): starts every service, enrols a demo stall, opens the vendor
    terminal when a display is available, prints every URL, and runs until Ctrl-C.

    The ledger runs as deployed: a three-server NATS JetStream cluster orders it and each
    organisation (production_base, wholesale_market, retail_market) runs its own node
    process; the bridge publishes with --ordering jetstream and reads from the nodes.
    Without nats-server the demo stops and says so; --solo runs the in-process ledger.

    Headless: drives N simulated sales, each paid by its own shopper (its own loopback
    address) at the sandbox platform's checkout, follows every paid sale onto the ledger,
    verifies the ledger, prints a summary (with paid_per_s and the charge-to-ledger
    p50/p99) and exits 1, with each failure's reason, when any sale was not paid, is
    missing from the ledger, or the ledger does not verify. Progress bars show on a
    terminal unless --json is given.

    \b
    Example:
        tracepay demo
        tracepay demo --headless --sales 20 --json
        tracepay demo --solo --headless --sales 20
    """
    temporary = data_dir is None and headless
    if data_dir is None:
        # A fresh directory per run: services get new ports each time, so state enrolled
        # against an earlier run's gateway and broker would point nowhere.
        data_dir = Path(tempfile.mkdtemp(prefix="tracepay-demo-")) if headless \
            else Path("var/demo") / time.strftime("%Y%m%d-%H%M%S")
    data_dir = data_dir.resolve()
    quiet = headless and as_json

    def say(text: str) -> None:
        if not quiet:
            click.echo(text, err=headless)

    system = DemoSystem(data_dir, insecure_demo=insecure_demo,
                        ordering="solo" if solo else "jetstream")
    exit_code = 0
    # SIGTERM (a supervisor, `timeout`, a closed terminal) must unwind through `finally`
    # like Ctrl-C does, or the services this command started outlive it.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        system.start(log=say)
        if headless:
            wait_s = timeout_s if timeout_s is not None else 300 + sales // 20
            exit_code = _headless(system, sales, wait_s, as_json, say)
        else:
            _interactive(system, no_terminal, say)
    except RuntimeError as exc:
        click.echo(f"demo failed: {exc}", err=True)
        exit_code = 2
    except KeyboardInterrupt:
        exit_code = 130
    finally:
        system.stop()
        if temporary and not keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(exit_code)


def _terminate(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def _headless(system: DemoSystem, sales: int, timeout_s: int, as_json: bool, say: Any) -> int:
    started = time.monotonic()
    summary = run_headless(system, sales, timeout_s=timeout_s, say=say,
                           show_progress=wants_progress(as_json))
    system.stop_service("bridge")  # the ledger is verified at rest, as an auditor would
    say("verifying the ledger")
    summary.update(verify_at_rest(system))
    summary["elapsed_s"] = round(time.monotonic() - started, 2)
    summary["data_dir"] = str(system.data_dir)
    problems = _problems(summary)
    summary["ok"] = not problems
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        for key, value in summary.items():
            if key not in ("failures", "trace_urls", "ledger_nodes", "nats_servers"):
                click.echo(f"{key}: {value}")
        for line in describe_ledger(summary):
            click.echo(line)
        for url in summary["trace_urls"][:3]:
            click.echo(f"trace: {url}")
    for problem in problems:
        click.echo(f"demo: {problem}", err=True)
    return 1 if problems else 0


def _problems(summary: dict[str, Any]) -> list[str]:
    """Why the run is not a success, one line each (empty: every sale paid, on a verified
    ledger)."""
    out = []
    if summary["paid"] < summary["sales"]:
        out.append(f"{summary['sales'] - summary['paid']} of {summary['sales']} sales not "
                   f"paid")
        out.extend(f"  {count} x {reason}"
                   for reason, count in summary["failure_reasons"].items())
    if summary["on_ledger"] < summary["paid"]:
        out.append(f"{summary['paid'] - summary['on_ledger']} paid sales not on the ledger")
    if summary["ended"] != "all_settled":
        out.append(f"the run ended by {summary['ended'].replace('_', ' ')} before every sale "
                   f"was settled")
    if not summary["ledger_verified"]:
        out.append("the ledger does not verify: see ledger_problems")
    if summary.get("ledger_roots_equal") is False:
        out.append("the organisations' nodes do not hold the same ledger: see ledger_nodes")
    return out


def _interactive(system: DemoSystem, no_terminal: bool, say: Any) -> None:
    seed_supply_chain(system, system.bridge_admin_token)
    say("a farm -> wholesaler -> stall supply chain is on the ledger")
    enrolment = system.enrol(STALL.enrolment_body())
    terminal_dir = system.data_dir / "terminal"
    say("")
    say(f"tracepay is running (files and logs in {system.data_dir}):")
    say(f"  gateway (scan landing, manager pages)  {system.urls['gateway']}/manager")
    say(f"    manager login: {system.manager_user} / {system.manager_password}")
    say(f"  sandbox payment platform               {system.urls['platform']}")
    say(f"  ledger bridge (trace API)              {system.urls['bridge']}/v1/head")
    say(f"  shopper pages                          {system.urls['consumer']}")
    for line in describe_ledger({"ordering": system.ordering,
                                 **(system.cluster.describe() if system.cluster else {})}):
        say(f"  {line}")
    say(f"  pinned ledger keys (trust file)        {system.trust_file}")
    say(f"  MQTT broker                            {system.urls['mqtt']}")
    say(f"  demo stall enrolment code              {enrolment['enrolment_code']}")
    terminal_argv = tracepay_command("terminal", "--data-dir", str(terminal_dir),
                                     "--enrol-code", enrolment["enrolment_code"],
                                     "--gateway-url", system.urls["gateway"])
    if os.environ.get("DISPLAY") and not no_terminal:
        system.services["terminal"] = ServiceProcess(
            terminal_argv, log_path=system.data_dir / "logs" / "terminal.log").start()
        say("  vendor terminal                        opened in a window")
    else:
        say("  vendor terminal (needs a display):")
        say("    " + " ".join(terminal_argv))
    say("Press Ctrl-C to stop.")
    while True:
        running = {**system.services, **(
            {f"ledger node {org}": node for org, node in system.cluster.nodes.items()}
            if system.cluster else {})}
        for name, process in running.items():
            if process.process and process.process.poll() is not None and name != "terminal":
                raise RuntimeError(f"{name} stopped: see {process.log_path}")
        time.sleep(1)
