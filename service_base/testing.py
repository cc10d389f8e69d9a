"""Helpers for tests, benchmarks and the demo: free ports and supervised child processes."""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

from .nats_cluster import NatsCluster, TlsFiles

__all__ = ["free_port", "wait_for_http", "wait_for_port", "ServiceProcess", "tracepay_command",
           "screenshot_dir", "CHROMIUM_ARGS", "launch_chromium", "PostgresServer",
           "postgres_bindir", "running_nats_cluster", "make_test_tls", "wait_until"]

#: How tests and benchmarks start Debian's Chromium: headless, and without the background
#: connections a closed network refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0,
               message: str = "condition", interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Tests wait for a condition this way instead of sleeping a guessed time, which races on a
    loaded machine. Past ``timeout`` seconds it fails the test, naming what it waited for.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def wait_for_http(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.1)


def tracepay_command(*args: str) -> list[str]:
    """``tracepay ARGS`` run with this interpreter, so it works without the console script."""
    return [sys.executable, "-m", "tracepay.cli", *args]


class ServiceProcess:
    """A child process (own process group) that is stopped with SIGTERM, then SIGKILL.

    Use as a context manager. Output goes to ``log_path`` so a failing test can show it.
    """

    def __init__(self, argv: Sequence[str], *, log_path: str | os.PathLike[str],
                 health_url: str | None = None, env: dict[str, str] | None = None,
                 startup_timeout: float = 30.0) -> None:
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.health_url = health_url
        self.env = env
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        environment = {**os.environ, **(self.env or {})}
        self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=environment,
                                        start_new_session=True)
        log.close()
        if self.health_url:
            try:
                wait_for_http(self.health_url, self.startup_timeout, self.process)
            except (TimeoutError, RuntimeError) as exc:
                self.stop()
                raise RuntimeError(f"{exc}\n--- {self.log_path} ---\n{self.log_tail()}") from exc
        return self

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def kill(self) -> None:
        """SIGKILL the whole group: a crash, not a shutdown."""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        if not self.process or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def screenshot_dir() -> Path:
    """Where tests save screenshots: ``test-artifacts/screenshots`` unless
    ``TRACEPAY_SCREENSHOTS_DIR`` says otherwise (``docs/screenshots`` refreshes the docs)."""
    root = Path(__file__).resolve().parents[1]
    directory = Path(os.environ.get("TRACEPAY_SCREENSHOTS_DIR")
                     or root / "test-artifacts" / "screenshots")
    if not directory.is_absolute():
        directory = root / directory
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def launch_chromium(playwright: Any) -> Any:
    """Debian's ``/usr/bin/chromium`` through Playwright, with :data:`CHROMIUM_ARGS`."""
    return playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)


def postgres_bindir() -> Path:
    """Where Debian's PostgreSQL server programs are (``pg_config --bindir``, else the
    newest ``/usr/lib/postgresql/<version>/bin``)."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            candidates.append(subprocess.run([pg_config, "--bindir"], check=True,
                                             capture_output=True, text=True).stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda path: int(Path(path).parent.name)
                         if Path(path).parent.name.isdigit() else 0, reverse=True)
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise FileNotFoundError("no PostgreSQL server programs (initdb, pg_ctl): install the "
                            "Debian package postgresql (scripts/install-system-packages.sh)")


class PostgresServer:
    """A throw-away PostgreSQL: ``initdb`` + ``pg_ctl`` on a temporary directory, on a free
    loopback port, trusting local connections (tests only), without fsync.

    ``initdb`` refuses to run as root, so as root the server runs as the ``postgres``
    system user (the Debian package makes it) on a directory it owns. It stops with
    :meth:`stop`, with the context manager, or at interpreter exit at the latest.
    ``new_database()`` gives each test a fresh database, copied from a template that
    ``prepare_template`` may fill once (e.g. with migrated tables).
    """

    USER = "tracepay"

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tracepay-postgres-"))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self._run_as = None
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            self._run_as = account
            os.chown(self.root, account.pw_uid, account.pw_gid)
        self.template: str | None = None
        self.running = False

    def _run(self, *argv: str, timeout: float = 60) -> None:
        extra: dict[str, Any] = {}
        if self._run_as is not None:
            extra = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid,
                     "extra_groups": []}
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                                cwd=self.root, stdin=subprocess.DEVNULL, **extra)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr}"
                               f"{result.stdout}\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def start(self) -> PostgresServer:
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.USER,
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=300 -c shared_buffers=64MB")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.log_path), "-w", "-t", "60", "-o", options, "start")
        self.running = True
        atexit.register(self.stop)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)

    def prepare_template(self, fill: Any) -> None:
        """Make the template later databases copy; ``fill(url)`` sets it up once."""
        name = "tracepay_template"
        self._admin(f"CREATE DATABASE {name} TEMPLATE template0")
        fill(self.url(name))
        self.template = name

    def new_database(self) -> str:
        """A fresh, empty (or template-filled) database; its URL."""
        name = "test_" + secrets.token_hex(6)
        template = self.template or "template0"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database of :meth:`new_database`, ending its connections."""
        name = url.rsplit("/", 1)[1]
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        if self.running:
            self.running = False
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m",
                          "immediate", "-w", "stop", timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_nats_cluster(directory: str | os.PathLike[str], *, size: int = 3,
                         ports: Sequence[int] | None = None,
                         tls: TlsFiles | None = None) -> Iterator[NatsCluster]:
    """The ledger's NATS cluster (``size`` 3) or a single JetStream server (``size`` 1)
    under ``directory``, with its users and permissions, stopped when the block ends.
    Passwords: ``cluster.password("bridge")``; URLs: ``cluster.servers``."""
    cluster = NatsCluster(directory, size=size, ports=ports, tls=tls)
    with cluster:
        yield cluster


def make_test_tls(directory: str | os.PathLike[str]) -> TlsFiles:
    """A throw-away CA and one certificate it signed for ``127.0.0.1``/``localhost``, usable
    as server and as client certificate (routes between servers use it both ways)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("tracepay test CA"))
          .issuer_name(name("tracepay test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                 x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                 serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    os.chmod(files.key_file, 0o600)
    return files
