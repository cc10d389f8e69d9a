"""The demo's running services: broker, sandbox platform, gateway, the ledger's NATS
cluster and organisation nodes, bridge, consumer app.

Each is a separate process on a free loopback port, started in dependency order and
stopped by ``stop`` (the same processes a market runs). ``ordering="jetstream"`` (the
demo's default) runs the ledger's real topology (:mod:`tracepay.demo_cluster`);
``ordering="solo"`` keeps the ledger inside the bridge's process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from service_base.testing import ServiceProcess, free_port, tracepay_command

from .broker import Broker
from .demo_cluster import LedgerCluster

__all__ = ["DemoSystem", "DEMO_GATEWAY_LIMITS", "ORDERINGS"]

#: How the demo's ledger is ordered: on a NATS JetStream cluster followed by one node
#: process per organisation, or by the solo ledger in the bridge's process.
ORDERINGS = ("jetstream", "solo")

#: The demo's one terminal rings up a whole market's sales (thousands a minute), far past
#: what one real stall's codes are scanned: its per-terminal scan limit is raised to fit
#: (unless the environment sets it). Every other limit keeps its production default.
DEMO_GATEWAY_LIMITS = {"TRACEPAY_GATEWAY_SCAN_LIMIT_PER_DEVICE": "1000000/minute"}


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
    #: Allow the amqtt fallback broker, which admits anyone (every page then says so).
    insecure_demo: bool = False
    #: One of ``ORDERINGS``.
    ordering: str = "jetstream"
    #: The NATS servers and ledger nodes (jetstream ordering), once started.
    cluster: LedgerCluster | None = None
    _servers: Future[LedgerCluster] | None = field(default=None, repr=False)

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
        if self.ordering not in ORDERINGS:
            raise ValueError(f"ordering {self.ordering!r}: expected one of {ORDERINGS}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.ordering == "jetstream":
            LedgerCluster.check_available()  # before anything starts
            self.cluster = LedgerCluster(self.data_dir)
            # The servers come up while the broker, platform and gateway do.
            starter = ThreadPoolExecutor(1, "nats-start")
            self._servers = starter.submit(self.cluster.start_servers)
            starter.shutdown(wait=False)
        # The broker admits only users the gateway writes: itself, the bridge, and each
        # enrolled terminal, each confined by the ACL to its own topics.
        broker_dir = self.data_dir / "broker"
        self.broker = Broker(broker_dir, password_file=broker_dir / "passwords",
                             acl_file=broker_dir / "acl",
                             insecure_demo=self.insecure_demo).start()
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
                      *(["--insecure-demo"] if self.insecure_demo else []),
                      port=ports["gateway"],
                      env={**DEMO_GATEWAY_LIMITS, **{
                               name: os.environ[name] for name in DEMO_GATEWAY_LIMITS
                               if name in os.environ},
                           "TRACEPAY_GATEWAY_MANAGER_PASSWORD": self.manager_password,
                           "TRACEPAY_GATEWAY_MQTT_PASSWORD": self.mqtt_gateway_password,
                           "TRACEPAY_GATEWAY_MQTT_BRIDGE_USERNAME": "tracepay-bridge",
                           "TRACEPAY_GATEWAY_MQTT_BRIDGE_PASSWORD": self.mqtt_bridge_password})
        say(f"gateway on {gateway_url}")
        ordering: list[str] = []
        if self.cluster is not None:
            assert self._servers is not None
            try:
                self._servers.result()
            except Exception as exc:  # a server that exited, a timeout, no stream
                raise RuntimeError(f"the ledger's NATS cluster did not start: {exc}") from exc
            assert self.cluster.nats is not None
            say(f"NATS JetStream cluster on {', '.join(self.cluster.nats.servers)} (stream "
                "LEDGER, 3 replicas)")
            self.cluster.start_nodes(self._gateway_key_file(gateway_url), log=say)
            self.cluster.pin_keys(self.trust_file)
            say(f"ledger nodes' keys pinned in {self.trust_file}")
            ordering = self.cluster.bridge_args()
        self._service("bridge", "bridge", "--host", "127.0.0.1", "--port", str(ports["bridge"]),
                      "--data-dir", str(self.data_dir / "bridge"), "--gateway-url",
                      gateway_url, "--mqtt-username", "tracepay-bridge", *mqtt, *ordering,
                      port=ports["bridge"],
                      env={"TRACEPAY_BRIDGE_ADMIN_TOKEN": self.bridge_admin_token,
                           "TRACEPAY_BRIDGE_MQTT_PASSWORD": self.mqtt_bridge_password})
        say(f"ledger bridge ({self.ordering} ordering) on {self.urls['bridge']}")
        if self.cluster is None:
            self._pin_ledger_keys()
            say(f"ledger keys pinned in {self.trust_file}")
        self._service("consumer", "consumer", "--host", "127.0.0.1", "--port",
                      str(ports["consumer"]), "--gateway-url", gateway_url, "--bridge-url",
                      self.urls["bridge"], port=ports["consumer"],
                      env={"TRACEPAY_CONSUMER_LEDGER_KEYS_FILE": str(self.trust_file)})
        say(f"consumer app on {consumer_url}")
        return self

    @property
    def trust_file(self) -> Path:
        """The ledger's pinned public keys, beside (never inside) the bridge's data."""
        return self.data_dir / "ledger-trust.json"

    def _gateway_key_file(self, gateway_url: str) -> Path:
        """The gateway's public key as a PEM file: every node checks each trade's signature
        by it (the same key the bridge fetches from the gateway)."""
        answer = requests.get(f"{gateway_url}/v1/keys", timeout=10)
        if answer.status_code != 200:
            raise RuntimeError(f"the gateway did not give its key: {answer.status_code}")
        path = self.data_dir / "gateway_public.pem"
        path.write_text(answer.json()["gateway_public_key_pem"])
        return path

    def _pin_ledger_keys(self) -> None:
        """Deployment's one moment of trust: the nodes' public keys, read from their key
        files as soon as the bridge made them, go to the verifiers and the consumer app."""
        completed = subprocess.run(tracepay_command(
            "ledger", "trust", "--data-dir", str(self.data_dir / "bridge"), "--out",
            str(self.trust_file)), capture_output=True, text=True, timeout=120)
        if completed.returncode != 0:
            raise RuntimeError(f"could not pin the ledger keys: {completed.stderr.strip()}")

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
        if self._servers is not None:
            with contextlib.suppress(Exception):  # its failure was reported by start
                self._servers.result()
        if self.cluster is not None:
            self.cluster.stop()
        for name in list(self.services):
            self.stop_service(name)
        if self.broker:
            self.broker.stop()
