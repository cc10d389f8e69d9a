"""``tracepay demo``: the whole system on one machine, on free loopback ports.

Starts the broker, the sandbox payment platform, the gateway, the ledger bridge and the
consumer app as separate processes (the same processes a market would run), enrols a demo
stall, and either waits for Ctrl-C (interactive) or drives N simulated sales end to end and
reports one JSON object (``--headless``). Every process it starts, it stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import requests

from .broker import Broker
from .demo_market import STALL, seed_supply_chain, wait_for_traces
from .testing import ServiceProcess, free_port, tracepay_command

__all__ = ["DemoSystem", "demo", "SimulatedShopper"]



@dataclass
class DemoSystem:
    """The running services of one demo; ``start`` brings them up in dependency order."""

    data_dir: Path
    manager_user: str = "manager"
    manager_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    bridge_admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    mqtt_gateway_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    mqtt_bridge_password: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    broker: Broker | None = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def _service(self, name: str, *args: str, port: int,
                 env: dict[str, str] | None = None) -> ServiceProcess:
        url = f"http://127.0.0.1:{port}"
        process = ServiceProcess(tracepay_command(*args), log_path=self.data_dir / "logs" /
                                 f"{name}.log", health_url=f"{url}/healthz",
                                 startup_timeout=60, env=env)
        self.services[name] = process
        process.start()
        self.urls[name] = url
        return process

    def start(self, *, log: Any = None) -> DemoSystem:
        say = log or (lambda _text: None)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The broker admits only users the gateway writes: itself, the bridge, and each
        # enrolled terminal, each confined by the ACL to its own topics.
        broker_dir = self.data_dir / "broker"
        self.broker = Broker(broker_dir, password_file=broker_dir / "passwords",
                             acl_file=broker_dir / "acl").start()
        self.urls["mqtt"] = self.broker.url
        say(f"broker ({self.broker.implementation}) on {self.broker.url}")
        mqtt = ["--mqtt-host", self.broker.host, "--mqtt-port", str(self.broker.port)]
        ports = {name: free_port() for name in ("platform", "gateway", "bridge", "consumer")}
        gateway_url = f"http://127.0.0.1:{ports['gateway']}"
        consumer_url = f"http://127.0.0.1:{ports['consumer']}"
        self._service("platform", "sandbox-platform", "--host", "127.0.0.1",
                      "--port", str(ports["platform"]),
                      "--data-dir", str(self.data_dir / "platform"), port=ports["platform"])
        say(f"sandbox payment platform on {self.urls['platform']}")
        self._service("gateway", "gateway", "--host", "127.0.0.1", "--port",
                      str(ports["gateway"]), "--data-dir", str(self.data_dir / "gateway"),
                      "--public-url", gateway_url, "--platform-url", self.urls["platform"],
                      "--consumer-url", consumer_url, "--manager-user", self.manager_user,
                      "--mqtt-username", "tracepay-gateway",
                      "--mosquitto-password-file", str(broker_dir / "passwords"),
                      "--mosquitto-acl-file", str(broker_dir / "acl"),
                      "--mosquitto-pid-file", str(broker_dir / "broker.pid"), *mqtt,
                      port=ports["gateway"],
                      env={"TRACEPAY_GATEWAY_MANAGER_PASSWORD": self.manager_password,
                           "TRACEPAY_GATEWAY_MQTT_PASSWORD": self.mqtt_gateway_password,
                           "TRACEPAY_GATEWAY_MQTT_BRIDGE_USERNAME": "tracepay-bridge",
                           "TRACEPAY_GATEWAY_MQTT_BRIDGE_PASSWORD": self.mqtt_bridge_password})
        say(f"gateway on {gateway_url}")
        self._service("bridge", "bridge", "--host", "127.0.0.1", "--port", str(ports["bridge"]),
                      "--data-dir", str(self.data_dir / "bridge"), "--gateway-url",
                      gateway_url, "--mqtt-username", "tracepay-bridge", *mqtt,
                      port=ports["bridge"],
                      env={"TRACEPAY_BRIDGE_ADMIN_TOKEN": self.bridge_admin_token,
                           "TRACEPAY_BRIDGE_MQTT_PASSWORD": self.mqtt_bridge_password})
        say(f"ledger bridge on {self.urls['bridge']}")
        self._service("consumer", "consumer", "--host", "127.0.0.1", "--port",
                      str(ports["consumer"]), "--gateway-url", gateway_url, "--bridge-url",
                      self.urls["bridge"], port=ports["consumer"])
        say(f"consumer app on {consumer_url}")
        return self

    def enrol(self, merchant: dict[str, str], device_id: str | None = None) -> dict[str, Any]:
        """Enrol a terminal as the manager would; returns the gateway's answer (with code)."""
        body = dict(merchant)
        if device_id:
            body["device_id"] = device_id
        response = requests.post(f"{self.urls['gateway']}/v1/devices", json=body, timeout=10,
                                 auth=(self.manager_user, self.manager_password))
        if response.status_code != 201:
            raise RuntimeError(f"enrolment refused: {response.status_code} {response.text}")
        return response.json()

    def stop_service(self, name: str) -> None:
        process = self.services.pop(name, None)
        if process:
            process.stop()

    def stop(self) -> None:
        for name in ("consumer", "gateway", "bridge", "platform"):
            self.stop_service(name)
        for name in list(self.services):
            self.stop_service(name)
        if self.broker:
            self.broker.stop()


class SimulatedShopper:
    """A shopper's phone, over HTTP only: open the QR URL, follow Pay, confirm at checkout."""

    def __init__(self, payer_id: str) -> None:
        self.payer_id = payer_id
        self.session = requests.Session()

    def pay(self, qr_url: str) -> dict[str, Any]:
        landing = self.session.get(qr_url, headers={"Accept": "application/json"}, timeout=15)
        if landing.status_code != 200:
            return {"ok": False, "step": "scan", "status": landing.status_code,
                    "body": landing.text[:300]}
        checkout_url = landing.json()["checkout_url"]
        paid = self.session.post(f"{checkout_url.rstrip('/')}/pay",
                                 data={"payer_id": self.payer_id},
                                 headers={"Accept": "application/json"}, timeout=15,
                                 allow_redirects=False)
        ok = paid.status_code in (200, 201, 303)
        return {"ok": ok, "step": "pay", "status": paid.status_code,
                "payment_id": landing.json().get("payment_id")}


def _read_events(process: subprocess.Popen, on_event: Any) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        line = line.strip()
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            on_event(json.loads(line))


def run_headless(system: DemoSystem, sales: int, *, timeout_s: float,
                 say: Any) -> dict[str, Any]:
    """Drive ``sales`` simulated sales to the ledger; return the summary (not yet verified).

    First the stall's stock arrives from a farm through a wholesaler (two paid trades on
    the ledger), so every shopper's sale traces back to the farm.
    """
    upstream = seed_supply_chain(system, system.bridge_admin_token)
    say(f"supply chain on the ledger: {upstream}")
    enrolment = system.enrol(STALL.enrolment_body())
    terminal_dir = system.data_dir / "terminal"
    argv = tracepay_command("terminal", "--headless", "--data-dir", str(terminal_dir),
                            "--enrol-code", enrolment["enrolment_code"], "--gateway-url",
                            system.urls["gateway"], "--simulate-sales", str(sales),
                            "--wait-results", str(int(timeout_s)))
    log = (system.data_dir / "logs" / "terminal.log").open("ab")
    terminal = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    charged: dict[str, dict[str, Any]] = {}
    results: dict[str, str] = {}
    shopper_outcomes: list[dict[str, Any]] = []
    lock = threading.Lock()
    pool = ThreadPoolExecutor(max_workers=4)

    def shop(event: dict[str, Any]) -> None:
        outcome = SimulatedShopper(f"shopper-{event['seq']:04d}").pay(event["qr_url"])
        with lock:
            shopper_outcomes.append(outcome)

    done = threading.Event()

    def on_event(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "charged":
            with lock:
                charged[event["sale_id"]] = event
            pool.submit(shop, event)
        elif kind == "result":
            with lock:
                results[event["sale_id"]] = event["status"]
        elif kind == "done":
            done.set()

    reader = threading.Thread(target=_read_events, args=(terminal, on_event), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    while not done.is_set() and time.monotonic() < deadline and terminal.poll() is None:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(terminal.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        terminal.wait(timeout=10)
    if terminal.poll() is None:
        os.killpg(terminal.pid, signal.SIGKILL)
    reader.join(timeout=5)
    pool.shutdown(wait=True)
    log.close()

    paid = [sale_id for sale_id, status in results.items() if status == "paid"]
    say(f"{len(charged)} charged, {len(paid)} paid; waiting for the ledger")
    on_ledger = wait_for_traces(system.urls["bridge"],
                                [charged[s]["trace_code"] for s in paid if s in charged],
                                deadline + 30)
    failed_shoppers = [o for o in shopper_outcomes if not o["ok"]]
    traced_to_farm = sum(_reaches_a_farm(trace) for trace in on_ledger.values())
    return {
        "sales": sales,
        "charged": len(charged),
        "paid": len(paid),
        "on_ledger": len(on_ledger),
        "shopper_failures": failed_shoppers[:5],
        "supply_chain": upstream,
        "traced_to_farm": traced_to_farm,
        "trace_urls": [f"{system.urls['consumer']}/trace/{code}" for code in on_ledger],
    }


def _reaches_a_farm(trace: dict[str, Any]) -> bool:
    """Whether the public trace of a sale links back to a production base."""
    return any(link.get("seller", {}).get("org") == "production_base"
               for link in trace.get("chain", []))


def verify_ledger(bridge_dir: Path) -> dict[str, Any]:
    """Run ``tracepay ledger verify`` as a user would; its JSON and exit status."""
    completed = subprocess.run(tracepay_command("ledger", "verify", "--data-dir",
                                                str(bridge_dir)),
                               capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(completed.stdout)
    except ValueError:
        report = {"output": completed.stdout[-2000:], "stderr": completed.stderr[-2000:]}
    return {"ok": completed.returncode == 0, "report": report}


@click.command("demo")
@click.option("--headless", is_flag=True, help="No window: run simulated sales and exit.")
@click.option("--sales", default=20, show_default=True, type=click.IntRange(1, 100_000),
              help="With --headless: how many simulated sales.")
@click.option("--json", "as_json", is_flag=True, help="With --headless: print one JSON object.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where every service keeps its files (default: a new var/demo/<time> "
                   "per run, or a temporary directory with --headless).")
@click.option("--timeout", "timeout_s", default=300, show_default=True, type=int,
              help="With --headless: seconds to wait for sales to be paid and on the ledger.")
@click.option("--keep", is_flag=True, help="With --headless: keep the temporary data directory.")
@click.option("--no-terminal", is_flag=True, help="Interactive: do not open the terminal window.")
def demo(headless: bool, sales: int, as_json: bool, data_dir: Path | None, timeout_s: int,
         keep: bool, no_terminal: bool) -> None:
    """Run the whole system on free loopback ports.

    Interactive (default): starts every service, enrols a demo stall, opens the vendor
    terminal when a display is available, prints every URL, and runs until Ctrl-C.

    Headless: drives N simulated sales whose shoppers pay at the sandbox platform's
    checkout, waits until every paid sale is on the ledger, verifies the ledger, prints
    a summary and exits 1 when any paid sale is missing from the ledger.

    \b
    Example:
        tracepay demo
        tracepay demo --headless --sales 20 --json
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

    system = DemoSystem(data_dir)
    exit_code = 0
    # SIGTERM (a supervisor, `timeout`, a closed terminal) must unwind through `finally`
    # like Ctrl-C does, or the services this command started outlive it.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    try:
        system.start(log=say)
        if headless:
            exit_code = _headless(system, sales, timeout_s, as_json, say)
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
    summary = run_headless(system, sales, timeout_s=timeout_s, say=say)
    system.stop_service("bridge")  # the ledger is verified at rest, as an auditor would
    verification = verify_ledger(system.data_dir / "bridge")
    summary["ledger_verified"] = verification["ok"]
    if not verification["ok"]:
        summary["ledger_problems"] = verification["report"]
    summary["elapsed_s"] = round(time.monotonic() - started, 2)
    summary["data_dir"] = str(system.data_dir)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        for key, value in summary.items():
            click.echo(f"{key}: {value}")
    missing = summary["paid"] - summary["on_ledger"]
    complete = summary["paid"] == summary["sales"]
    return 0 if missing == 0 and summary["ledger_verified"] and complete else 1


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
        for name, process in system.services.items():
            if process.process and process.process.poll() is not None and name != "terminal":
                raise RuntimeError(f"{name} stopped: see {process.log_path}")
        time.sleep(1)
