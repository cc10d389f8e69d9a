"""Bridge intake and trace benchmark: prints one JSON object.

Measures the whole bridge path per trade: contract (schema, Ed25519 gateway signature,
amounts, device), buyer matching, FIFO allocation, three ledger entries (public, private,
allocation) endorsed by three nodes and committed in signed blocks, and the index. Then the
latency of ``GET /v1/trace/<code>`` (backward chain to the farm, recalls, proofs) through the
app. Trades are built and signed before the clock starts. Other work on the machine slows
the wall-clock figures; ``trades_per_cpu_s`` and ``load_average_1m`` put them in context.

    .venv/bin/python bench/bridge_intake.py --trades 20000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from ledger_bridge.app import create_app  # noqa: E402
from ledger_bridge.sample_trades import Seller, line, make_trade  # noqa: E402
from ledger_bridge.service import BridgeService  # noqa: E402
from trace_ledger.ledger import SWITCH_INTERVAL_S  # noqa: E402


def market_trades(key: Ed25519PrivateKey, count: int, stalls: int = 50) -> list[dict]:
    """Per stall: one wholesale purchase (fed by a farm sale) per 40 shopper sales."""
    farm = Seller("farm-1", "Farm", "production_base", "dev-farm")
    whole = Seller("whole-1", "Wholesale", "wholesale_market", "dev-whole")
    shops = [Seller(f"stall-{i}", f"Stall {i}", "retail_market", f"dev-s{i}")
             for i in range(stalls)]
    rng = random.Random(7)
    trades, seqs, at = [], {}, 1_700_000_000_000

    def sale(seller: Seller, lines: list[dict], payer: str) -> None:
        nonlocal at
        at += 10
        seqs[seller.device_id] = seqs.get(seller.device_id, 0) + 1
        trades.append(make_trade(key, seller, seqs[seller.device_id], lines, payer_id=payer,
                                 at_ms=at))

    while len(trades) < count:
        for index, shop in enumerate(shops):
            sale(farm, [line("cabbage", 50_000, lot=f"F{len(trades)}")], "pay-whole")
            sale(whole, [line("cabbage", 40_000)], f"pay-stall-{index}")
            for _ in range(40):
                sale(shop, [line("cabbage", rng.randint(300, 1500))], "shopper")
            if len(trades) >= count:
                break
    return trades[:count]


def market_bridge(data_dir: str, key: Ed25519PrivateKey) -> BridgeService:
    """A bridge as ``tracepay bridge`` runs it (its switch interval included), knowing the
    market's wholesaler and 50 stalls by their payer ids."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    service = BridgeService(data_dir, gateway_key=key.public_key(), block_max=500,
                            block_timeout_s=0.2)
    service.store.put_party("whole-1", "Wholesale", "wholesale_market", ["pay-whole"])
    for index in range(50):
        service.store.put_party(f"stall-{index}", f"Stall {index}", "retail_market",
                                [f"pay-stall-{index}"])
    return service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=2_000)
    args = parser.parse_args()
    key = Ed25519PrivateKey.generate()
    trades = market_trades(key, args.trades)
    with tempfile.TemporaryDirectory() as tmp:
        service = market_bridge(tmp, key)
        start, cpu_start = time.perf_counter(), time.process_time()
        futures = [service.writer.submit(lambda t=t: service.intake.trade(t)) for t in trades]
        statuses = [future.result(600).status for future in futures]
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        client = create_app(service).test_client()
        rng = random.Random(1)
        shopper_codes = [t["trace_code"] for t in trades if t["seller"]["org"] == "retail_market"]
        latencies = []
        for code in rng.sample(shopper_codes, min(args.queries, len(shopper_codes))):
            begin = time.perf_counter()
            response = client.get(f"/v1/trace/{code}")
            latencies.append((time.perf_counter() - begin) * 1000)
            assert response.status_code == 200 and len(response.json["chain"]) >= 1
        latencies.sort()
        head = service.ledger.head()
        verify_start = time.perf_counter()
        verified = service.ledger.verify().ok
        verify_s = time.perf_counter() - verify_start
        service.close()
    print(json.dumps({
        "benchmark": "bridge_intake", "trades": len(trades),
        "accepted": statuses.count("accepted"), "intake_seconds": round(elapsed, 3),
        "trades_per_s": round(len(trades) / elapsed, 1),
        "intake_cpu_seconds": round(cpu, 3),
        "trades_per_cpu_s": round(len(trades) / cpu, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "ledger_entries": head["trades"], "blocks": head["height"],
        "trace_queries": len(latencies),
        "trace_p50_ms": round(statistics.median(latencies), 3),
        "trace_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "verify_seconds": round(verify_s, 3), "verified": verified,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
