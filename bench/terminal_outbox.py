"""Offline for days: ring-up latency with a large backlog, then the drain rate on reconnect.

Runs a real Mosquitto (tracepay's config) on a free port and a subscriber standing in for
the gateway. Prints one JSON object:
``{"queued": n, "ring_up_ms_empty": {...}, "ring_up_ms_backlog": {...}, "drain": {...}}``.

Example:
    .venv/bin/python bench/terminal_outbox.py --backlog 100000
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt

from market_protocol import new_nonce
from market_protocol.topics import sales_topic
from pos_terminal import DEFAULT_PRODUCTS, Cart, Terminal
from pos_terminal.sale_record import build_sale
from pos_terminal.testing import enrol_offline
from tracepay.broker import Broker


def _cart() -> Cart:
    cart = Cart()
    cart.add(DEFAULT_PRODUCTS[0], weight_g=1234)
    cart.add(DEFAULT_PRODUCTS[3], weight_g=456)
    return cart


def _ring_up_ms(term: Terminal, count: int) -> dict[str, float]:
    cart, times = _cart(), []
    for _ in range(count):
        start = time.perf_counter()
        term.charge(cart, render_png=False)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median": round(statistics.median(times), 3),
            "p95": round(times[int(len(times) * 0.95) - 1], 3), "n": count}


def _backlog(term: Terminal, count: int) -> None:
    lines = _cart().to_records()
    start_seq = term.outbox.next_seq()
    now = time.time_ns() // 1_000_000
    records = (build_sale(device_id=term.device_id, key_version=1, device_key=term.device_key,
                          seq=seq, sale_id=f"{term.device_id}.{seq}.b", lines=lines,
                          created_at_ms=now, nonce=new_nonce())
               for seq in range(start_seq, start_seq + count))
    term.outbox.add_many(records)


def _count_sales(port: int, device_id: str, expected: int, ready_file: str) -> None:
    """The gateway's side, in a process of its own (as the real gateway is): count
    distinct sales until ``expected`` arrived, then print ``{"distinct", "messages"}``."""
    keys: set[str] = set()
    messages = 0
    done = threading.Event()

    def on_message(client, userdata, message) -> None:
        nonlocal messages
        sale = json.loads(message.payload)
        messages += 1
        keys.add(f"{sale['sale_id']}|{sale['seq']}")
        if len(keys) >= expected:
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-gateway",
                         clean_session=False, protocol=mqtt.MQTTv311)
    client.on_connect = lambda c, *a: c.subscribe(sales_topic(device_id), qos=1)
    client.on_subscribe = lambda *a: Path(ready_file).write_text("ready")
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(600)
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"distinct": len(keys), "messages": messages}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--count-sales", nargs=4, metavar=("PORT", "DEVICE", "N", "READY"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.count_sales:
        port, device, expected, ready = args.count_sales
        _count_sales(int(port), device, int(expected), ready)
        return
    with tempfile.TemporaryDirectory() as tmp:
        broker = Broker(Path(tmp) / "broker").start()
        try:
            enrol_offline(Path(tmp) / "t", "T-BENCH", mqtt_port=broker.port)
            with Terminal.open(Path(tmp) / "t") as term:
                empty = _ring_up_ms(term, args.samples)
                start = time.perf_counter()
                _backlog(term, args.backlog)
                fill_s = time.perf_counter() - start
                backlog = _ring_up_ms(term, args.samples)
                queued = term.outbox_counts()["queued"]
                ready = Path(tmp) / "ready"
                counter = subprocess.Popen(
                    [sys.executable, __file__, "--count-sales", str(broker.port), "T-BENCH",
                     str(queued), str(ready)], stdout=subprocess.PIPE, text=True)
                while not ready.exists():
                    time.sleep(0.05)
                start = time.perf_counter()
                term.start()
                while term.outbox_counts()["queued"]:
                    time.sleep(0.01)
                acked_s = time.perf_counter() - start
                received = json.loads(counter.communicate(timeout=600)[0])
                received_s = time.perf_counter() - start
        finally:
            broker.stop()
    print(json.dumps({
        "queued": queued,
        "backlog_fill_s": round(fill_s, 2),
        "ring_up_ms_empty": empty,
        "ring_up_ms_backlog": backlog,
        "drain": {"sales": queued, "acked_s": round(acked_s, 2),
                  "acked_per_s": round(queued / acked_s),
                  "received_distinct": received["distinct"],
                  "received_messages": received["messages"],
                  "received_per_s": round(received["distinct"] / received_s)},
    }))


if __name__ == "__main__":
    main()
