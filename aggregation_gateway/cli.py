"""``tracepay gateway`` and ``tracepay device``: a thin shell over the gateway's parts."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

import click
import requests

from .settings import load_gateway_settings, public_view

__all__ = ["gateway", "device"]

log = logging.getLogger(__name__)


def _run_background(settings: dict[str, Any]) -> None:
    """Entry of the background process: MQTT link, outbox publisher and sweeper."""
    from .background import Background
    from .wiring import build_gateway

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    background = Background(build_gateway(settings)).start()
    stop.wait()
    background.stop()


class _Supervisor:
    """Keeps the background process alive while the HTTP server runs (restarts on exit)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.context = multiprocessing.get_context("spawn")
        self.process: Any = None
        self._stop = threading.Event()

    def _spawn(self) -> None:
        self.process = self.context.Process(target=_run_background, args=(self.settings,),
                                            name="gateway-background", daemon=True)
        self.process.start()

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            if self.process is not None and not self.process.is_alive():
                log.error("background process exited (%s); restarting",
                          self.process.exitcode)
                self._spawn()

    def start(self) -> None:
        self._spawn()
        threading.Thread(target=self._watch, name="background-supervisor", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)


def _wait_for_subscription(parts: Any, name: str, timeout: float) -> None:
    """Serve only once the sales subscription exists: on a fresh broker there is no
    session yet, and a sale published before it would have nowhere to wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = parts.db.conn.execute("SELECT state FROM link_status WHERE name = ?",
                                    (name,)).fetchone()
        if row is not None and row["state"] == "subscribed":
            return
        time.sleep(0.1)
    log.warning("MQTT link not subscribed after %.0f s; serving anyway (sales wait for it "
                "only once its session exists at the broker)", timeout)


def _stop_when_lost(lease: Any) -> None:
    """An instance whose name the database no longer holds for it stops (SIGTERM to
    itself, the normal shutdown): another process may take the name, and two under one
    name would share a broker session."""
    def run() -> None:
        lease.lost.wait()
        log.critical("instance %r lost its database lock; stopping", lease.name)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=run, name="instance-guard", daemon=True).start()


@click.group("gateway", invoke_without_command=True)
@click.pass_context
@click.option("--config", type=click.Path(exists=True, dir_okay=False),
              help="TOML file with a [gateway] table.")
@click.option("--database-url", help="postgresql://... (default: SQLite in the data "
              "directory; also TRACEPAY_DATABASE_URL).")
@click.option("--instance-name", help="This gateway's name among several on one "
              "PostgreSQL database (MQTT user tracepay-gateway-<name>).")
@click.option("--host", help="Address to listen on. [default: 127.0.0.1]")
@click.option("--port", type=int, help="TCP port. [default: 8200]")
@click.option("--data-dir", type=click.Path(file_okay=False), help="State directory.")
@click.option("--public-url", help="Base URL phones reach (QR MACs cover it).")
@click.option("--platform-url", help="Sandbox payment platform base URL.")
@click.option("--consumer-url", help="Consumer app base URL.")
@click.option("--mqtt-host", help="MQTT broker host (empty: no MQTT link).")
@click.option("--mqtt-port", type=int, help="MQTT broker port.")
@click.option("--mqtt-username", help="Gateway's MQTT user name.")
@click.option("--mqtt-password", help="Gateway's MQTT password.")
@click.option("--manager-user", help="Manager account to create or update.")
@click.option("--manager-password", help="Its password.")
@click.option("--workers", type=int, help="HTTP worker processes (granian when > 1).")
@click.option("--platform-auto-register/--no-platform-auto-register", default=None,
              help="Register at the sandbox platform on start-up. [default: on]")
@click.option("--mosquitto-password-file", help="Mosquitto password file to write.")
@click.option("--mosquitto-acl-file", help="Mosquitto ACL file to write.")
@click.option("--mosquitto-pid-file", help="Mosquitto pid file (SIGHUP after writing).")
@click.option("--insecure-demo/--no-insecure-demo", default=None,
              help="Run even on a broker that admits anyone (amqtt); pages say so.")
def gateway(ctx: click.Context, config: str | None, **flags: Any) -> None:
    """Run the aggregation gateway: scan landing, payments, devices, MQTT link.

    \b
    Example:
        tracepay gateway --port 8200 --data-dir var/gateway \\
            --platform-url http://127.0.0.1:8510 --mqtt-host 127.0.0.1 --mqtt-port 1883

    \b
    Two instances on one PostgreSQL database (the same key files in both data dirs):
        tracepay gateway --instance-name a --port 8201 --database-url postgresql://...
        tracepay gateway --instance-name b --port 8202 --database-url postgresql://...
    """
    if ctx.invoked_subcommand is not None:
        return
    from service_base.serving import serve_wsgi

    from .app import create_app
    from .manager_accounts import initial_password
    from .platform_registration import register_at_platform
    from .wiring import build_gateway

    settings = load_gateway_settings(config, {key: value for key, value in flags.items()
                                              if value is not None})
    if not settings["manager_password"]:
        settings["manager_password"] = initial_password(settings["data_dir"])
        log.info("manager password is in %s/manager.password", settings["data_dir"])
    parts = build_gateway(settings)
    from .instances import InstanceRefused, acquire_instance, link_name

    try:
        lease = acquire_instance(parts.db, settings, parts.registry.master_key)
    except InstanceRefused as exc:
        parts.db.close()
        raise click.ClickException(str(exc)) from None
    lease.watch()
    if settings["platform_url"] and settings["platform_auto_register"]:
        path = register_at_platform(settings, parts.signing_key)
        log.info("registered at %s; platform key in %s", settings["platform_url"], path)
    parts.write_mqtt_auth()
    from .broker_check import BrokerAdmitsStrangers, check_broker

    try:
        if check_broker(settings):
            log.warning("INSECURE DEMO: the MQTT broker admits anyone")
    except BrokerAdmitsStrangers as exc:
        raise click.ClickException(str(exc)) from None
    log.info("gateway settings: %s", json.dumps(public_view(settings), default=str))
    workers = max(1, settings["workers"])
    supervisor: _Supervisor | None = None
    background = None
    parts.db.conn.execute("DELETE FROM link_status WHERE name = ?", (link_name(settings),))
    if workers > 1:
        supervisor = _Supervisor(settings)
        supervisor.start()
    else:
        from .background import Background

        background = Background(build_gateway(settings)).start()  # with the platform key
    if settings["mqtt_host"]:
        _wait_for_subscription(parts, link_name(settings), settings["mqtt_subscribe_wait_s"])
    parts.db.close()  # no SQLite connection may cross the server's fork
    _stop_when_lost(lease)
    try:
        serve_wsgi(lambda: create_app(settings), settings["host"], settings["port"],
                   workers=workers, threads=settings["threads"])
    finally:
        if supervisor:
            supervisor.stop()
        if background:
            background.stop()
        lease.release()



@gateway.command("migrate")
@click.option("--config", type=click.Path(exists=True, dir_okay=False),
              help="TOML file with a [gateway] table.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="State directory.")
@click.option("--database-url", help="postgresql://... (default: SQLite in the data "
              "directory; also TRACEPAY_DATABASE_URL).")
def migrate(config: str | None, **flags: Any) -> None:
    """Create or upgrade the gateway's database in place; prints JSON (revisions).

    Run it with the gateways stopped, after a backup (docs/deploy.md). A gateway also
    upgrades on start; this does it on purpose, e.g. before starting several at once.

    \b
    Example:
        tracepay gateway migrate --database-url postgresql://tracepay@db.example/tracepay
    """
    from .database import Database
    from .migrate import current_revision, ensure_current
    from .schema import HEAD_REVISION

    settings = load_gateway_settings(config, {key: value for key, value in flags.items()
                                              if value is not None})
    db = Database(settings["data_dir"], settings["database_url"], migrate=False)
    try:
        before = current_revision(db)
        action = ensure_current(db)
        after = current_revision(db)
    finally:
        db.close()
    click.echo(json.dumps({"database": db.dialect, "before": before, "after": after,
                           "head": HEAD_REVISION, "action": action}))

# -- device -------------------------------------------------------------------------------
def _manager_call(method: str, url: str, user: str, password: str,
                  body: dict[str, Any] | None = None) -> dict[str, Any]:
    session = requests.Session()
    session.trust_env = False
    try:
        response = session.request(method, url, json=body, auth=(user, password), timeout=30)
    except requests.RequestException as exc:
        raise click.ClickException(f"cannot reach {url}: {type(exc).__name__}") from None
    try:
        data = response.json()
    except ValueError:
        data = {"error": "bad_response", "message": response.text[:200]}
    if response.status_code >= 400:
        click.echo(json.dumps(data), err=True)
        sys.exit(1)
    return data


_GATEWAY_URL = click.option("--gateway-url", required=True, envvar="TRACEPAY_GATEWAY_URL",
                            help="The gateway's base URL.")
_USER = click.option("--manager-user", required=True, envvar="TRACEPAY_MANAGER_USER")
_PASSWORD = click.option("--manager-password", required=True, envvar="TRACEPAY_MANAGER_PASSWORD")


@click.group("device")
def device() -> None:
    """Enrol, revoke and rotate terminals at a gateway (as a manager).

    \b
    Example:
        tracepay device enrol --gateway-url http://127.0.0.1:8200 --manager-user manager \\
            --manager-password secret --merchant-id stall-7 --merchant-name "Li's greens" \\
            --org retail_market
    """


@device.command("enrol")
@_GATEWAY_URL
@_USER
@_PASSWORD
@click.option("--merchant-id", required=True)
@click.option("--merchant-name", required=True)
@click.option("--org", required=True,
              type=click.Choice(["production_base", "wholesale_market", "retail_market"]))
@click.option("--device-id", help="Choose the device id (default: generated).")
def enrol(gateway_url: str, manager_user: str, manager_password: str, merchant_id: str,
          merchant_name: str, org: str, device_id: str | None) -> None:
    """Enrol a terminal; prints JSON with its one-time enrolment code.

    \b
    Example:
        tracepay device enrol --gateway-url URL --manager-user U --manager-password P \\
            --merchant-id stall-7 --merchant-name "Li's greens" --org retail_market
    """
    body: dict[str, Any] = {"merchant_id": merchant_id, "merchant_name": merchant_name,
                            "org": org}
    if device_id:
        body["device_id"] = device_id
    click.echo(json.dumps(_manager_call("POST", f"{gateway_url.rstrip('/')}/v1/devices",
                                        manager_user, manager_password, body)))


@device.command("revoke")
@_GATEWAY_URL
@_USER
@_PASSWORD
@click.argument("device_id")
def revoke(gateway_url: str, manager_user: str, manager_password: str, device_id: str) -> None:
    """Revoke a terminal: its QR codes are refused at once.

    \b
    Example:
        tracepay device revoke --gateway-url URL --manager-user U --manager-password P dev-1
    """
    click.echo(json.dumps(_manager_call(
        "POST", f"{gateway_url.rstrip('/')}/v1/devices/{device_id}/revoke", manager_user,
        manager_password)))


@device.command("rotate")
@_GATEWAY_URL
@_USER
@_PASSWORD
@click.argument("device_id")
def rotate(gateway_url: str, manager_user: str, manager_password: str, device_id: str) -> None:
    """Give a terminal a new key version; prints the code it claims the new key with.

    \b
    Example:
        tracepay device rotate --gateway-url URL --manager-user U --manager-password P dev-1
    """
    click.echo(json.dumps(_manager_call(
        "POST", f"{gateway_url.rstrip('/')}/v1/devices/{device_id}/rotate", manager_user,
        manager_password)))
