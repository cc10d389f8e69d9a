"""The MQTT broker tracepay runs: Mosquitto with its own config, amqtt where Mosquitto is absent.

Mosquitto's defaults are wrong for a payment system: it keeps no state across restarts and
drops everything past 1,000 queued messages for a client that is away. Here persistence is
on and the per-client queue is large enough for a terminal fleet's day, so a gateway or a
bridge that is down for a while loses nothing.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import click

from service_base.testing import ServiceProcess, free_port, wait_for_port

__all__ = ["Broker", "mosquitto_binary", "render_mosquitto_conf", "broker_command"]

#: Messages kept per away client before the broker drops any (Mosquitto's default: 1,000).
MAX_QUEUED_MESSAGES = 1_000_000
#: QoS 1 messages in flight per client: high enough that a terminal's outbox drains fast.
MAX_INFLIGHT_MESSAGES = 1_000


def mosquitto_binary() -> str | None:
    """Path of the mosquitto binary, or None. ``TRACEPAY_MOSQUITTO`` overrides."""
    explicit = os.environ.get("TRACEPAY_MOSQUITTO")
    if explicit:
        return explicit
    return shutil.which("mosquitto") or next(
        (path for path in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
         if os.access(path, os.X_OK)), None)


def render_mosquitto_conf(*, host: str, port: int, data_dir: Path,
                          password_file: Path | None = None,
                          acl_file: Path | None = None) -> str:
    """A complete mosquitto.conf; anonymous access only when no password file is given."""
    lines = [
        "per_listener_settings false",
        f"listener {port} {host}",
        f"allow_anonymous {'false' if password_file else 'true'}",
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_interval 1",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        "max_queued_bytes 0",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        f"log_dest file {data_dir / 'mosquitto.log'}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "connection_messages true",
        f"user {getpass.getuser()}",
    ]
    if password_file:
        lines.append(f"password_file {password_file}")
        # The client id is the authenticated user name, whatever the client asks for: a
        # device cannot connect as "tracepay-bridge", kick the bridge off and, with a clean
        # session, erase the trades queued for it.
        lines.append("use_username_as_clientid true")
    if acl_file:
        lines.append(f"acl_file {acl_file}")
    return "\n".join(lines) + "\n"


def _amqtt_config(host: str, port: int) -> str:
    return textwrap.dedent(f"""\
        listeners:
          default:
            type: tcp
            bind: {host}:{port}
        plugins:
          amqtt.plugins.authentication.AnonymousAuthPlugin:
            allow_anonymous: true
        """)


class Broker:
    """One broker process on a loopback port; restartable with the same state.

    ``implementation`` is ``"mosquitto"``, ``"amqtt"`` or ``"auto"`` (mosquitto if present).
    amqtt cannot enforce Mosquitto's password file and ACL, so with a password file it runs
    only when ``insecure_demo`` says so (and the gateway then shows it on every page).
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, host: str = "127.0.0.1",
                 port: int | None = None, password_file: str | os.PathLike[str] | None = None,
                 acl_file: str | os.PathLike[str] | None = None,
                 implementation: str = "auto", insecure_demo: bool = False) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self.port = port or free_port()
        self.password_file = Path(password_file).resolve() if password_file else None
        self.acl_file = Path(acl_file).resolve() if acl_file else None
        binary = mosquitto_binary()
        if implementation == "auto":
            implementation = "mosquitto" if binary else "amqtt"
        if implementation == "mosquitto" and not binary:
            raise RuntimeError("mosquitto is not installed: apt-get install mosquitto, "
                               "or use implementation='amqtt'")
        if implementation == "amqtt" and password_file and not insecure_demo:
            raise RuntimeError("the amqtt broker would accept anyone: it cannot enforce the "
                               "password file and ACL. Install mosquitto (apt-get install "
                               "mosquitto), or run an insecure demo with --insecure-demo")
        self.implementation = implementation
        self._binary = binary
        self._service: ServiceProcess | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        suffix = "conf" if self.implementation == "mosquitto" else "yaml"
        return self.data_dir / f"broker.{suffix}"

    def _argv(self) -> list[str]:
        if self.implementation == "mosquitto":
            self.config_path.write_text(render_mosquitto_conf(
                host=self.host, port=self.port, data_dir=self.data_dir,
                password_file=self.password_file, acl_file=self.acl_file))
            return [str(self._binary), "-c", str(self.config_path)]
        self.config_path.write_text(_amqtt_config(self.host, self.port))
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(self.config_path)]

    @property
    def process(self) -> subprocess.Popen | None:
        return self._service.process if self._service else None

    def start(self, timeout: float = 15.0) -> Broker:
        if self.process and self.process.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for path in (self.password_file, self.acl_file):
            if path and not path.exists():
                path.touch(mode=0o600)
        self._service = ServiceProcess(self._argv(),
                                       log_path=self.data_dir / "broker.stdout.log").start()
        try:
            wait_for_port(self.port, self.host, timeout)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.implementation} did not start on {self.port}: "
                               f"see {self.data_dir}") from None
        (self.data_dir / "broker.pid").write_text(f"{self._service.pid}\n")
        return self

    def reload(self) -> None:
        """Re-read password and ACL files (SIGHUP), keeping connections."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGHUP)

    def stop(self, timeout: float = 10.0) -> None:
        """Clean shutdown: Mosquitto writes its persistence file on SIGTERM."""
        if self._service:
            self._service.stop(timeout)

    def kill(self) -> None:
        """A crash: SIGKILL, no chance to save."""
        if self._service:
            self._service.kill()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@click.command("broker")
@click.option("--data-dir", default="var/broker", show_default=True, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=1883, show_default=True, type=int)
@click.option("--password-file", type=click.Path(), help="Mosquitto password file.")
@click.option("--acl-file", type=click.Path(), help="Mosquitto ACL file.")
@click.option("--implementation", type=click.Choice(["auto", "mosquitto", "amqtt"]),
              default="auto", show_default=True)
@click.option("--insecure-demo", is_flag=True,
              help="Allow amqtt with a password file (it admits anyone): a demo only.")
def broker_command(data_dir: str, host: str, port: int, password_file: str | None,
                   acl_file: str | None, implementation: str, insecure_demo: bool) -> None:
    """Run the MQTT broker in the foreground with tracepay's settings.

    \b
    Example:
        tracepay broker --port 1883 --data-dir var/broker
    """
    try:
        broker = Broker(data_dir, host=host, port=port, password_file=password_file,
                        acl_file=acl_file, implementation=implementation,
                        insecure_demo=insecure_demo)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    process = broker.start().process
    if process is None:  # start() returns only once its process listens
        raise click.ClickException(f"{broker.implementation} has no process after starting")
    click.echo(f"{broker.implementation} listening on {broker.url} (config {broker.config_path})")
    try:
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
