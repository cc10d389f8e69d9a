"""Shared fixtures: real services on loopback, started per test session and stopped after.

``mqtt_broker`` is a real Mosquitto (amqtt only where no mosquitto binary exists) with
tracepay's configuration on a free port. Tests that stop or kill it must restart it
(``mqtt_broker.start()``) before they end, so later tests find it running.

Markers (``slow``, ``browser``, ``ui``, ``broker``; see pyproject.toml) are given here from
what a test uses, so ``make test-fast`` can leave out whatever starts real processes.
A module that starts processes in its test bodies says so itself (``pytestmark``).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

from service_base.testing import launch_chromium, running_nats_cluster
from tracepay.broker import Broker

#: Fixtures whose use puts a test in a marker's set (fixtures they depend on count too).
MARKER_FIXTURES: dict[str, frozenset[str]] = {
    "browser": frozenset({"browser", "chromium", "page"}),
    "broker": frozenset({"mqtt_broker", "fresh_broker"}),
    "slow": frozenset({"nats_cluster", "nats_server", "postgres_server"}),
}
#: A fixture whose code names one of these starts a service process: its users are slow.
PROCESS_WORDS = ("ServiceProcess", "tracepay_command", "Popen(")


def _starts_processes(fixturedef: object, seen: dict[object, bool]) -> bool:
    """A fixture starts processes if its code says so or its module is marked slow."""
    func = getattr(fixturedef, "func", None)
    if func not in seen:
        try:
            source = inspect.getsource(func)  # type: ignore[arg-type]
        except (OSError, TypeError):
            source = ""
        marks = getattr(inspect.getmodule(func), "pytestmark", [])
        marks = marks if isinstance(marks, list) else [marks]
        seen[func] = (any(word in source for word in PROCESS_WORDS)
                      or any(getattr(mark, "name", "") == "slow" for mark in marks))
    return seen[func]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by the fixtures it requests, its module, and its database backend."""
    seen: dict[object, bool] = {}
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        wanted = {marker for marker, fixtures in MARKER_FIXTURES.items() if names & fixtures}
        module = getattr(item, "module", None)
        module_name = getattr(module, "__name__", "")
        if module_name.startswith("test_terminal_ui_"):
            wanted.add("ui")
        if module is not None and getattr(module, "Broker", None) is Broker:
            wanted.add("broker")
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("gateway_backend") == "postgresql":
            wanted.add("slow")
        info = getattr(item, "_fixtureinfo", None)
        for definitions in getattr(info, "name2fixturedefs", {}).values():
            if any(_starts_processes(definition, seen) for definition in definitions):
                wanted.add("slow")
                break
        for marker in sorted(wanted - {mark.name for mark in item.iter_markers()}):
            item.add_marker(marker)


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


# -- the gateway's database: every test_gateway_* module runs on SQLite and on PostgreSQL --
GATEWAY_BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory):
    """One real PostgreSQL for the session (initdb + pg_ctl); a template database holds
    the gateway's migrated tables, so each test's fresh database is a quick copy."""
    from aggregation_gateway.database import Database
    from service_base.testing import PostgresServer

    scratch = tmp_path_factory.mktemp("pg-template")
    with PostgresServer() as server:
        server.prepare_template(lambda url: Database(scratch, url).close())
        yield server


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.startswith("test_gateway_"):
        metafunc.parametrize("gateway_backend", GATEWAY_BACKENDS, indirect=True,
                             scope="module")


@pytest.fixture(scope="module", autouse=True)
def gateway_backend(request: pytest.FixtureRequest):
    """Which database this module's gateways use (``test_gateway_support.BACKEND``)."""
    name = getattr(request, "param", "sqlite")
    if name == "sqlite":
        yield name
        return
    import test_gateway_support

    test_gateway_support.BACKEND.update(name=name,
                                        server=request.getfixturevalue("postgres_server"))
    try:
        yield name
    finally:
        test_gateway_support.BACKEND.update(name="sqlite", server=None)


@pytest.fixture(autouse=True)
def gateway_process_database(gateway_backend: str):
    """On PostgreSQL, a fresh database per test for gateways run as processes
    (``TRACEPAY_DATABASE_URL``, which they read; in-process gateways get their own)."""
    if gateway_backend != "postgresql":
        yield ""
        return
    import test_gateway_support

    url = test_gateway_support.new_database_url()
    os.environ["TRACEPAY_DATABASE_URL"] = url
    try:
        yield url
    finally:
        os.environ.pop("TRACEPAY_DATABASE_URL", None)
        test_gateway_support.drop_database(url)

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
