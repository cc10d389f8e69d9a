"""The terminal fleet of ``bench/pipeline.py``: N enrolled terminals in one process.

Each terminal is the real ``pos_terminal.Terminal`` (its own data directory, SQLite
outbox, QR issuing and MQTT uplink to the broker); one process holds them all so that 50
terminals fit on a small machine and their CPU is read from one ``/proc`` entry. The
benchmark drives the fleet through stdin, one command a line, and follows it on stdout,
one JSON object a line:

* ``charge K``: every terminal rings up K random sales (``{"event": "charged", "sale_id",
  "qr_url", "trace_code"}`` each, then ``{"event": "charged_all", "count"}``);
* ``start``: every uplink starts publishing what its outbox holds, and keeps publishing
  whatever is charged later (``{"event": "started", "at"}``);
* from ``start`` on, every half second: ``{"event": "depth", "t", "queued"}``, the sales
  still in the outboxes (not yet acknowledged by the broker);
* ``stop``: uplinks stop, the process exits.

Usage (by the benchmark): ``python bench/pipeline_parts/terminal_fleet.py --fleet-file
FILE``, where FILE is JSON ``{"gateway_url", "terminals": [{"data_dir", "enrolment_code"}, ...]}``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pos_terminal.provisioning import (  # noqa: E402
    ProvisioningError,
    claim_enrolment,
    load_config,
    save_enrolment,
)
from pos_terminal.simulator import random_cart  # noqa: E402
from pos_terminal.terminal import Terminal  # noqa: E402

_out_lock = threading.Lock()


def emit(event: dict) -> None:
    line = json.dumps(event)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def open_fleet(fleet: dict) -> list[Terminal]:
    """Claim each enrolment (first run) and open every terminal."""
    terminals = []
    for spec in fleet["terminals"]:
        data_dir = Path(spec["data_dir"])
        try:
            load_config(data_dir)
        except ProvisioningError:
            save_enrolment(data_dir, claim_enrolment(fleet["gateway_url"],
                                                     spec["enrolment_code"]))
        terminals.append(Terminal.open(data_dir))
    return terminals


def charge_all(terminals: list[Terminal], per_terminal: int, rng: random.Random) -> int:
    """Round-robin over the terminals, as a market's stalls sell side by side."""
    catalogues = [terminal.catalogue() for terminal in terminals]
    count = 0
    for _ in range(per_terminal):
        for terminal, products in zip(terminals, catalogues, strict=True):
            charged = terminal.charge(random_cart(products, rng), render_png=False)
            emit({"event": "charged", "sale_id": charged.sale_id, "qr_url": charged.qr_url,
                  "trace_code": charged.trace_code, "device_id": terminal.device_id})
            count += 1
    return count


def report_depth(terminals: list[Terminal], stopping: threading.Event) -> None:
    while not stopping.wait(0.5):
        emit({"event": "depth", "t": time.time(),
              "queued": sum(terminal.outbox_counts()["queued"] for terminal in terminals)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet-file", required=True)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    fleet = json.loads(Path(args.fleet_file).read_text())
    terminals = open_fleet(fleet)
    rng = random.Random(args.seed)
    emit({"event": "ready", "terminals": len(terminals),
          "devices": [terminal.device_id for terminal in terminals]})
    stopping = threading.Event()
    try:
        for command in sys.stdin:
            words = command.split()
            if not words:
                continue
            if words[0] == "charge":
                emit({"event": "charged_all", "count": charge_all(terminals, int(words[1]), rng)})
            elif words[0] == "start":
                at = time.time()
                for terminal in terminals:
                    terminal.start()
                emit({"event": "started", "at": at})
                threading.Thread(target=report_depth, args=(terminals, stopping),
                                 daemon=True).start()
            elif words[0] == "stop":
                break
    finally:
        stopping.set()
        for terminal in terminals:
            terminal.stop()
            terminal.close()
        emit({"event": "stopped"})


if __name__ == "__main__":
    main()
