"""The load generator of ``bench/gateway_scale.py``: shoppers' phones scanning genuine QRs.

Each load process is long-lived (started once, told what to do per run over a pipe), so
the interpreter's start-up is not inside any measured run. Each of its threads keeps one
keep-alive connection to one gateway instance (connections are dealt round-robin over the
instances, as a layer-4 balancer would), makes a fresh dynamic QR per scan (MACed with a
claimed device key, a new order number each time) and GETs its landing as JSON: the
gateway verifies it and creates the payment order at the platform before it answers.

``http.client`` rather than requests or httpx: it is the cheapest client in the
interpreter, and on two cores every millisecond the load generator spends is taken from
the gateways, the platform and PostgreSQL.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from market_protocol import QRPayload, encode_token, new_nonce

__all__ = ["Device", "RunOrder", "serve_load"]

#: Order numbers are unsigned 32-bit: each run owns 10**7 of them, each thread 10**5.
RUN_SPAN = 10_000_000
THREAD_SPAN = 100_000


@dataclass(frozen=True)
class Device:
    """A claimed terminal: what it needs to make its QR codes."""

    device_id: str
    key_hex: str
    key_version: int
    gateway_url: str  # the base URL its codes' MACs cover


@dataclass(frozen=True)
class RunOrder:
    """One measured run, as one load process sees it."""

    run_no: int
    targets: tuple[tuple[str, int], ...]  # the instances' (host, port)
    devices: tuple[Device, ...]
    first_thread: int  # this process's threads are first_thread .. first_thread + threads - 1
    threads: int
    start_at: float  # time.time() at which every thread starts
    warmup_s: float
    duration_s: float


def _scan_thread(order: RunOrder, index: int, window: tuple[float, float],
                 out: list[tuple[float, float, str]]) -> None:
    """Scan until the window closes; record (finished at, latency ms, status) per scan."""
    host, port = order.targets[index % len(order.targets)]
    device = order.devices[index % len(order.devices)]
    key = bytes.fromhex(device.key_hex)
    seq = order.run_no * RUN_SPAN + index * THREAD_SPAN
    connection = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"Accept": "application/json"}
    time.sleep(max(0.0, order.start_at - time.time()))
    while time.time() < window[1]:
        seq += 1
        token = encode_token(QRPayload(
            device.device_id, device.key_version, seq, 100 + seq % 900, "CNY",
            int(time.time()), new_nonce()), key, device.gateway_url)
        started = time.perf_counter()
        try:
            connection.request("GET", "/q/" + token, headers=headers)
            response = connection.getresponse()
            response.read()
            status = str(response.status)
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            connection = http.client.HTTPConnection(host, port, timeout=30)
            status = type(exc).__name__
        out.append((time.time(), (time.perf_counter() - started) * 1000, status))
    connection.close()


def _run(order: RunOrder) -> dict[str, Any]:
    window = (order.start_at + order.warmup_s, order.start_at + order.warmup_s
              + order.duration_s)
    records: list[list[tuple[float, float, str]]] = [[] for _ in range(order.threads)]
    threads = [threading.Thread(target=_scan_thread, args=(
        order, order.first_thread + i, window, records[i])) for i in range(order.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    by_target = [0] * len(order.targets)
    for i, mine in enumerate(records):
        for finished, latency, status in mine:
            if not window[0] <= finished < window[1]:
                continue  # warm-up, or after the window closed
            if status == "200":
                latencies.append(latency)
                by_target[(order.first_thread + i) % len(order.targets)] += 1
            else:
                errors[status] = errors.get(status, 0) + 1
    return {"latencies": latencies, "errors": errors, "by_target": by_target}


def serve_load(pipe: Connection) -> None:
    """A load process's loop: a ``RunOrder`` in, its results out; ``None`` ends it."""
    while True:
        order = pipe.recv()
        if order is None:
            return
        pipe.send(_run(order))
