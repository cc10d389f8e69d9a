"""Shared fixtures: real services on loopback, started per test session and stopped after.

``mqtt_broker`` is a real Mosquitto (amqtt only where no mosquitto binary exists) with
tracepay's configuration on a free port. Tests that stop or kill it must restart it
(``mqtt_broker.start()``) before they end, so later tests find it running.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service_base.testing import launch_chromium, running_nats_cluster
from tracepay.broker import Broker


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory: pytest.TempPathFactory):
    broker = Broker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def fresh_broker(tmp_path: Path):
    """A broker of this test's own, for tests that stop, kill or reconfigure it."""
    broker = Broker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium for a module's page tests (Playwright driving Debian's build)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def nats_cluster(tmp_path: Path):
    """Three real nats-server processes (JetStream, routes, users and permissions) of this
    test's own; drills may kill and restart them (``nats_cluster.kill(i)``, ``start_server(i)``)."""
    with running_nats_cluster(tmp_path / "nats", size=3) as cluster:
        yield cluster


@pytest.fixture
def nats_server(tmp_path: Path):
    """One real JetStream nats-server with the same users and permissions (stream R1)."""
    with running_nats_cluster(tmp_path / "nats", size=1) as cluster:
        yield cluster
