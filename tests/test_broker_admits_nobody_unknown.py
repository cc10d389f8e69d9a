"""A broker that admits anyone is never used quietly: the amqtt fallback cannot enforce the
password file, so it runs only as an explicit insecure demo, the gateway refuses to start
on any broker that lets a stranger in, and with --insecure-demo every page says so. Real
amqtt and Mosquitto processes, the real gateway command."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests

from aggregation_gateway.broker_check import broker_admits_strangers
from service_base.testing import ServiceProcess, free_port, tracepay_command
from tracepay.broker import Broker


def _gateway_argv(tmp_path: Path, broker: Broker, port: int, *extra: str) -> list[str]:
    return tracepay_command(
        "gateway", "--host", "127.0.0.1", "--port", str(port), "--data-dir",
        str(tmp_path / "gateway"), "--no-platform-auto-register", "--mqtt-host", broker.host,
        "--mqtt-port", str(broker.port), "--mqtt-username", "tracepay-gateway",
        "--mqtt-password", "gateway-secret", "--manager-password", "manager-secret",
        "--mosquitto-password-file", str(tmp_path / "passwd"),
        "--mosquitto-acl-file", str(tmp_path / "acl"), *extra)


def test_amqtt_with_a_password_file_needs_the_insecure_flag(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="accept anyone"):
        Broker(tmp_path / "b", password_file=tmp_path / "passwd", implementation="amqtt")
    completed = subprocess.run(
        tracepay_command("broker", "--implementation", "amqtt", "--port", str(free_port()),
                         "--data-dir", str(tmp_path / "b"), "--password-file",
                         str(tmp_path / "passwd")),
        capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0
    assert "--insecure-demo" in completed.stderr


def test_the_probe_tells_a_secured_mosquitto_from_an_open_one(tmp_path: Path) -> None:
    with Broker(tmp_path / "secured", password_file=tmp_path / "passwd",
                implementation="mosquitto") as secured:
        assert broker_admits_strangers(secured.host, secured.port) is False
    with Broker(tmp_path / "open", implementation="mosquitto") as open_broker:
        assert broker_admits_strangers(open_broker.host, open_broker.port) is True
    assert broker_admits_strangers("127.0.0.1", free_port()) is None


def test_the_gateway_refuses_a_broker_that_admits_anyone(tmp_path: Path) -> None:
    with Broker(tmp_path / "amqtt", password_file=tmp_path / "passwd",
                implementation="amqtt", insecure_demo=True) as broker:
        completed = subprocess.run(_gateway_argv(tmp_path, broker, free_port()),
                                   capture_output=True, text=True, timeout=120)
        assert completed.returncode != 0
        assert "admits a user it was never given" in completed.stderr


def test_an_insecure_demo_runs_and_every_page_says_so(tmp_path: Path) -> None:
    with Broker(tmp_path / "amqtt", password_file=tmp_path / "passwd",
                implementation="amqtt", insecure_demo=True) as broker:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with ServiceProcess(_gateway_argv(tmp_path, broker, port, "--insecure-demo"),
                            log_path=tmp_path / "gateway.log", health_url=f"{url}/healthz",
                            startup_timeout=90):
            session = requests.Session()
            session.trust_env = False
            login = session.get(f"{url}/manager/login", timeout=10)
            assert login.status_code == 200 and 'id="insecure-demo"' in login.text
            scan = session.get(f"{url}/q/not-a-code", headers={"Accept": "text/html"},
                               timeout=10)
            assert 400 <= scan.status_code < 500 and 'id="insecure-demo"' in scan.text
        assert "INSECURE DEMO" in (tmp_path / "gateway.log").read_text()
