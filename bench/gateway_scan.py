"""Benchmark: scan landing + order creation at the sandbox platform.

Starts the sandbox platform and the gateway (granian) as their own processes on loopback,
enrols a terminal, issues N distinct QR codes (each scan creates one order at the
platform), and fires them from a load generator in a second process. Prints ONE JSON
object: {"scans", "seconds", "scans_per_s", "p50_ms", "p90_ms", "p99_ms", "errors", ...}.

Example:
    .venv/bin/python bench/gateway_scan.py --scans 3000 --concurrency 16 --workers 3 --threads 2
    .venv/bin/python bench/gateway_scan.py --mode rescan   # the landing without the platform
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from market_protocol import QRPayload, encode_token, new_nonce  # noqa: E402
from service_base.testing import ServiceProcess, free_port, tracepay_command  # noqa: E402

MANAGER = ("bench", "bench-password")


def _load(paths: list[str], host: str, port: int, concurrency: int, queue: multiprocessing.Queue
          ) -> None:
    """The load generator (its own process): keep-alive connections, one per thread."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(paths)))

    def worker() -> None:
        connection = http.client.HTTPConnection(host, port, timeout=30)
        mine: list[float] = []
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            started = time.perf_counter()
            try:
                connection.request("GET", paths[index], headers={"Accept": "application/json"})
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
                status = type(exc).__name__
            mine.append((time.perf_counter() - started) * 1000)
            if status != 200:
                with lock:
                    errors[str(status)] = errors.get(str(status), 0) + 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put({"seconds": time.perf_counter() - started, "latencies": latencies,
               "errors": errors})


def _session_cpu_s(session_id: int) -> float:
    """CPU seconds (user + system) of every live process in a session (a service and its
    workers; ServiceProcess starts each service in its own session)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id:  # field 6 of stat: session id
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    # Few threads per worker: requests then wait in granian's queue, in order, rather than
    # in the interpreter lock's unordered scramble; p99 fell from 126-148 ms (3 x 4,
    # platform 2 x 8) to 71-116 ms at the same CPU per scan (docs/gateway.md, Speed).
    parser.add_argument("--workers", type=int, default=3, help="gateway HTTP workers (granian)")
    parser.add_argument("--threads", type=int, default=2, help="threads per gateway worker")
    parser.add_argument("--platform-workers", type=int, default=2)
    parser.add_argument("--platform-threads", type=int, default=4,
                        help="threads per platform worker")
    parser.add_argument("--mode", choices=("new", "rescan"), default="new",
                        help="new: every scan creates an order at the platform; rescan: "
                             "scans of 50 codes whose orders exist (the landing alone)")
    parser.add_argument("--keep-dir", help="keep the services' data and logs in this "
                        "directory (default: a temporary one, removed afterwards)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tracepay-bench-") as tmp:
        root = Path(args.keep_dir or tmp)
        platform_port, gateway_port = free_port(), free_port()
        platform_url = f"http://127.0.0.1:{platform_port}"
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        platform = ServiceProcess(tracepay_command(
            "sandbox-platform", "--host", "127.0.0.1", "--port", str(platform_port),
            "--data-dir", str(root / "platform"), "--workers", str(args.platform_workers)),
            log_path=root / "platform.log", health_url=f"{platform_url}/healthz",
            env={**os.environ, "TRACEPAY_SANDBOX_PLATFORM_THREADS": str(args.platform_threads)})
        # Every limit counts (the real cost), none refuses one client scanning at full speed.
        env = {"TRACEPAY_GATEWAY_SCAN_LIMIT_PER_ADDRESS": "100000000/second",
               "TRACEPAY_GATEWAY_SCAN_LIMIT_PER_DEVICE": "100000000/second",
               "TRACEPAY_GATEWAY_THREADS":
               str(args.threads), "TRACEPAY_GATEWAY_QUERY_AFTER_S": "600",
               "TRACEPAY_LOG_LEVEL": "WARNING"}
        gateway = ServiceProcess(tracepay_command(
            "gateway", "--host", "127.0.0.1", "--port", str(gateway_port), "--data-dir",
            str(root / "gateway"), "--platform-url", platform_url, "--manager-user",
            MANAGER[0], "--manager-password", MANAGER[1], "--workers", str(args.workers)),
            log_path=root / "gateway.log", health_url=f"{gateway_url}/healthz",
            env={**os.environ, **env})
        with platform, gateway:
            http = requests.Session()
            http.trust_env = False
            enrolled = http.post(f"{gateway_url}/v1/devices", auth=MANAGER, json={
                "merchant_id": "bench-stall", "merchant_name": "Bench stall",
                "org": "retail_market"}).json()
            claim = http.post(f"{gateway_url}/v1/enrolments/{enrolled['enrolment_code']}"
                              "/claim").json()
            key = bytes.fromhex(claim["device_key"])
            now = int(time.time())
            paths = [urlsplit(gateway_url + "/q/" + encode_token(QRPayload(
                claim["device_id"], claim["key_version"], seq, 100 + seq % 900, "CNY", now,
                new_nonce()), key, gateway_url)).path
                for seq in range(1, (args.warmup + args.scans if args.mode == "new" else 50) + 1)]
            if args.mode == "rescan":
                for path in paths:  # create the 50 orders once
                    http.get(gateway_url + path, headers={"Accept": "application/json"})
                paths = [paths[i % 50] for i in range(args.warmup + args.scans)]
            queue: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
            context = multiprocessing.get_context("spawn")
            results = []
            cpu_before: dict[str, float] = {}
            for batch in (paths[:args.warmup], paths[args.warmup:]):
                cpu_before = {"gateway": _session_cpu_s(gateway.pid),
                              "platform": _session_cpu_s(platform.pid)}
                process = context.Process(target=_load, args=(
                    batch, "127.0.0.1", gateway_port, args.concurrency, queue))
                process.start()
                results.append(queue.get(timeout=600))
                process.join()
            measured = results[1]
            cpu_ms = {name: round((_session_cpu_s(service.pid) - cpu_before[name]) * 1000
                                  / max(1, len(measured["latencies"])), 2)
                      for name, service in (("gateway", gateway), ("platform", platform))}
            orders = http.get(f"{gateway_url}/healthz").json()
        latencies = measured["latencies"]
        print(json.dumps({
            "benchmark": "gateway_scan", "mode": args.mode, "scans": len(latencies),
            "seconds": round(measured["seconds"], 3),
            "scans_per_s": round(len(latencies) / measured["seconds"], 1),
            "p50_ms": _quantile(latencies, 0.50), "p90_ms": _quantile(latencies, 0.90),
            "p99_ms": _quantile(latencies, 0.99),
            "mean_ms": round(statistics.fmean(latencies), 2),
            "errors": measured["errors"], "concurrency": args.concurrency,
            "gateway_workers": args.workers, "gateway_threads": args.threads,
            "platform_workers": args.platform_workers,
            "platform_threads": args.platform_threads, "cpus": os.cpu_count(),
            "server": "granian" if args.workers > 1 else "waitress",
            "outbox_pending_after": orders.get("outbox_pending"),
            "gateway_cpu_ms_per_scan": cpu_ms["gateway"],
            "platform_cpu_ms_per_scan": cpu_ms["platform"],
            "load_average_1m": round(os.getloadavg()[0], 2),
        }))


if __name__ == "__main__":
    main()
