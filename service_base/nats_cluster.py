"""The NATS JetStream cluster that orders the ledger: server configs, users and processes.

Three ``nats-server`` processes (Debian's ``nats-server``), each with its own config file,
cluster routes and JetStream store directory, on loopback ports. Clients authenticate as
users of one account, ``LEDGER``, with permissions that carry the ledger's trust model:

* ``bridge`` may create/inspect the ``LEDGER`` stream, publish to ``ledger.tx.>`` and read
  single messages back (to find, after a crash, what it published but did not index);
* ``node-<org>`` may create, read and ack its own durable consumer ``node-<org>`` only, and
  may not publish to ``ledger.tx.>``: an organisation's node follows the order, it cannot
  write into it;
* ``auditor`` may read stream info and single messages (tests, benchmarks, verification).

Passwords are generated into ``DIR/secrets`` (0600); the server configs hold only their
bcrypt hashes. This module knows how to run the servers; ``tracepay nats`` is its command
and ``service_base.testing`` starts one for tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import requests

__all__ = ["NatsCluster", "TlsFiles", "nats_server_binary", "render_server_conf", "user_permissions",
           "node_user", "BRIDGE_USER", "AUDITOR_USER", "ACCOUNT", "LEDGER_ORGS"]

ACCOUNT = "LEDGER"
BRIDGE_USER = "bridge"
AUDITOR_USER = "auditor"
ROUTE_USER = "route"
#: The organisations that run nodes (``market_protocol.ORGS``, repeated here so the base
#: package stays below the protocol one).
LEDGER_ORGS = ("production_base", "wholesale_market", "retail_market")
#: Largest message a server accepts: above the stream's largest batch (4 MiB).
MAX_PAYLOAD = 8 * 1024 * 1024
_STREAM = "LEDGER"
_API = "$JS.API"


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for a server: its certificate and key, and the CA that signed every
    server's (and, for mutual TLS, every client's) certificate."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def block(self, *, verify: bool) -> dict[str, Any]:
        return {"ca_file": str(self.ca_file), "cert_file": str(self.cert_file),
                "key_file": str(self.key_file), "verify": verify, "timeout": 2}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _ServerProcess:
    """One nats-server child in its own process group: SIGTERM to stop (it then flushes
    its store), SIGKILL to crash."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        if self.process.poll() is None:
            self._signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def node_user(org: str) -> str:
    """The NATS user (and durable consumer name) of an organisation's node."""
    return f"node-{org}"


def nats_server_binary() -> str | None:
    """Path of ``nats-server``, or None. ``TRACEPAY_NATS_SERVER`` overrides."""
    explicit = os.environ.get("TRACEPAY_NATS_SERVER")
    if explicit:
        return explicit
    return shutil.which("nats-server") or next(
        (path for path in ("/usr/sbin/nats-server", "/usr/local/bin/nats-server")
         if os.access(path, os.X_OK)), None)


def user_permissions(user: str) -> dict[str, Any]:
    """The publish/subscribe permissions of one user (the trust model, as data)."""
    if user == BRIDGE_USER:
        publish = ["ledger.tx.>", f"{_API}.INFO", f"{_API}.STREAM.NAMES",
                   f"{_API}.STREAM.CREATE.{_STREAM}", f"{_API}.STREAM.UPDATE.{_STREAM}",
                   f"{_API}.STREAM.INFO.{_STREAM}", f"{_API}.STREAM.MSG.GET.{_STREAM}"]
        return {"publish": {"allow": publish}, "subscribe": {"allow": ["_INBOX.>"]}}
    if user == AUDITOR_USER:
        publish = [f"{_API}.INFO", f"{_API}.STREAM.INFO.{_STREAM}",
                   f"{_API}.STREAM.MSG.GET.{_STREAM}"]
        return {"publish": {"allow": publish, "deny": ["ledger.tx.>"]},
                "subscribe": {"allow": ["_INBOX.>"]}}
    if user.startswith("node-"):
        consumer = user
        publish = [f"{_API}.INFO", f"{_API}.STREAM.NAMES", f"{_API}.STREAM.INFO.{_STREAM}",
                   f"{_API}.STREAM.MSG.GET.{_STREAM}",
                   f"{_API}.CONSUMER.CREATE.{_STREAM}.{consumer}",
                   f"{_API}.CONSUMER.CREATE.{_STREAM}.{consumer}.>",
                   f"{_API}.CONSUMER.DURABLE.CREATE.{_STREAM}.{consumer}",
                   f"{_API}.CONSUMER.INFO.{_STREAM}.{consumer}",
                   f"{_API}.CONSUMER.DELETE.{_STREAM}.{consumer}",
                   f"{_API}.CONSUMER.MSG.NEXT.{_STREAM}.{consumer}",
                   f"$JS.ACK.{_STREAM}.{consumer}.>"]
        return {"publish": {"allow": publish, "deny": ["ledger.tx.>"]},
                "subscribe": {"allow": ["_INBOX.>"]}}
    raise ValueError(f"unknown NATS user {user!r}")


def render_server_conf(*, name: str, host: str, port: int, http_port: int, store_dir: Path,
                       log_file: Path, password_hashes: dict[str, str],
                       cluster_port: int | None = None, routes: Sequence[str] = (),
                       route_password: str | None = None,
                       tls: TlsFiles | None = None) -> str:
    """One server's complete config, as JSON (which nats-server's config parser reads).

    With ``tls``, clients must speak TLS (the server's certificate, checked against the CA)
    and routes use mutual TLS: a server joins only with a certificate from that CA."""
    users = [{"user": user, "password": hashed, "permissions": user_permissions(user)}
             for user, hashed in sorted(password_hashes.items())]
    conf: dict[str, Any] = {
        "server_name": name, "listen": f"{host}:{port}", "http": f"{host}:{http_port}",
        "max_payload": MAX_PAYLOAD, "log_file": str(log_file), "logtime": True,
        "jetstream": {"store_dir": str(store_dir), "max_memory_store": 64 * 1024 * 1024,
                      "max_file_store": 20 * 1024 * 1024 * 1024},
        "accounts": {ACCOUNT: {"jetstream": "enabled", "users": users}},
    }
    if tls is not None:
        conf["tls"] = tls.block(verify=False)
    if cluster_port is not None:
        conf["cluster"] = {
            "name": "tracepay-ledger", "listen": f"{host}:{cluster_port}",
            "authorization": {"user": ROUTE_USER, "password": route_password},
            "routes": [f"nats-route://{ROUTE_USER}:{route_password}@{route}"
                       for route in routes]}
        if tls is not None:
            conf["cluster"]["tls"] = tls.block(verify=True)
    return json.dumps(conf, indent=2) + "\n"


class NatsCluster:
    """``size`` nats-server processes under ``data_dir`` (3: a cluster; 1: one server).

    ``start()`` writes the secrets (kept across restarts), every server's config and
    ``cluster.json``, starts the servers and waits until JetStream answers healthy on all.
    ``kill(i)`` / ``stop_server(i)`` / ``start_server(i)`` drive one server for fault drills.
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, size: int = 3,
                 host: str = "127.0.0.1", ports: Sequence[int] | None = None,
                 orgs: Sequence[str] = LEDGER_ORGS, startup_timeout: float = 60.0,
                 tls: TlsFiles | None = None) -> None:
        if size < 1:
            raise ValueError("a NATS cluster needs at least one server")
        if ports is not None and len(ports) != size:
            raise ValueError(f"{len(ports)} client ports given for {size} servers")
        self.data_dir = Path(data_dir)
        self.size, self.host, self.orgs = size, host, tuple(orgs)
        self.startup_timeout = startup_timeout
        self.tls = tls
        self.ports = list(ports) if ports else [_free_port() for _ in range(size)]
        self.cluster_ports = [_free_port() for _ in range(size)] if size > 1 else []
        self.http_ports = [_free_port() for _ in range(size)]
        self.processes: list[_ServerProcess | None] = [None] * size

    # -- addresses and credentials -------------------------------------------------------
    @property
    def users(self) -> list[str]:
        return [BRIDGE_USER, AUDITOR_USER, *(node_user(org) for org in self.orgs)]

    @property
    def servers(self) -> list[str]:
        scheme = "tls" if self.tls else "nats"
        return [f"{scheme}://{self.host}:{port}" for port in self.ports]

    @property
    def replicas(self) -> int:
        return 3 if self.size >= 3 else 1

    def server_dir(self, index: int) -> Path:
        return self.data_dir / f"nats-{index + 1}"

    def password_file(self, user: str) -> Path:
        return self.data_dir / "secrets" / f"{user}.password"

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    def monitor_url(self, index: int) -> str:
        return f"http://{self.host}:{self.http_ports[index]}"

    def log_tail(self, index: int, lines: int = 40) -> str:
        try:
            text = (self.server_dir(index) / "nats-server.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- files -----------------------------------------------------------------------------
    def _secret(self, name: str) -> str:
        path = self.password_file(name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path.parent, 0o700)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(24) + "\n")
        return path.read_text().strip()

    def write_files(self) -> Path:
        """Secrets, one config per server and ``cluster.json``; returns cluster.json's path."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        hashes = {user: bcrypt.hashpw(self._secret(user).encode(),
                                      bcrypt.gensalt(rounds=10, prefix=b"2a")).decode()
                  for user in self.users}
        route_password = self._secret(ROUTE_USER) if self.size > 1 else None
        routes = [f"{self.host}:{port}" for port in self.cluster_ports]
        for index in range(self.size):
            directory = self.server_dir(index)
            (directory / "jetstream").mkdir(parents=True, exist_ok=True)
            conf = render_server_conf(
                name=f"nats-{index + 1}", host=self.host, port=self.ports[index],
                http_port=self.http_ports[index], store_dir=directory / "jetstream",
                log_file=directory / "nats-server.log", password_hashes=hashes,
                cluster_port=self.cluster_ports[index] if self.size > 1 else None,
                routes=[route for i, route in enumerate(routes) if i != index],
                route_password=route_password, tls=self.tls)
            conf_path = directory / "nats-server.conf"
            conf_path.write_text(conf)
            os.chmod(conf_path, 0o600)
        description = {
            "servers": self.servers, "monitor": [self.monitor_url(i) for i in range(self.size)],
            "replicas": self.replicas, "account": ACCOUNT,
            "users": {user: {"password_file": str(self.password_file(user))}
                      for user in self.users}}
        path = self.data_dir / "cluster.json"
        path.write_text(json.dumps(description, indent=2) + "\n")
        return path

    # -- processes ---------------------------------------------------------------------------
    def start(self) -> NatsCluster:
        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("nats-server not found: install the Debian package "
                               "(scripts/install-system-packages.sh) or set TRACEPAY_NATS_SERVER")
        self._binary = binary
        self.write_files()
        try:
            for index in range(self.size):
                self.start_server(index, wait=False)
            self.wait_healthy(timeout=self.startup_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def start_server(self, index: int, *, wait: bool = True) -> None:
        """(Re)start server ``index`` with its config, ports and store unchanged."""
        directory = self.server_dir(index)
        self.processes[index] = _ServerProcess(
            [self._binary, "-c", str(directory / "nats-server.conf")], directory / "stdout.log")
        if wait:
            self.wait_healthy([index], timeout=self.startup_timeout)

    def kill(self, index: int) -> None:
        """SIGKILL server ``index``: a crash, its store left as it was."""
        process = self.processes[index]
        if process is not None:
            process.kill()

    def stop_server(self, index: int) -> None:
        process = self.processes[index]
        if process is not None:
            process.stop()

    def pid(self, index: int) -> int | None:
        process = self.processes[index]
        return process.pid if process else None

    def is_healthy(self, index: int) -> bool:
        """JetStream on server ``index`` is up and its streams are current (``/healthz``)."""
        try:
            return requests.get(self.monitor_url(index) + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def wait_healthy(self, indices: Sequence[int] | None = None, timeout: float = 60.0) -> None:
        indices = list(range(self.size)) if indices is None else list(indices)
        deadline = time.monotonic() + timeout
        while True:
            waiting = [i for i in indices if not self.is_healthy(i)]
            if not waiting:
                return
            for index in waiting:
                process = self.processes[index]
                if process is not None and process.process.poll() is not None:
                    raise RuntimeError(f"nats-server {index + 1} exited with "
                                       f"{process.process.returncode}:\n{self.log_tail(index)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"nats-server(s) {[i + 1 for i in waiting]} not healthy "
                                   f"after {timeout}s:\n{self.log_tail(waiting[0])}")
            time.sleep(0.1)

    def stream_state(self, index: int, stream: str = _STREAM) -> dict[str, Any] | None:
        """The stream's state as server ``index`` holds it (``/jsz``), or None if it has none."""
        answer = requests.get(self.monitor_url(index) + "/jsz",
                              params={"accounts": "true", "streams": "true"}, timeout=2).json()
        for account in answer.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                if detail.get("name") == stream:
                    return {**detail.get("state", {}), "cluster": detail.get("cluster", {})}
        return None

    def stop(self) -> None:
        for process in self.processes:
            if process is not None:
                process.stop()

    def __enter__(self) -> NatsCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
