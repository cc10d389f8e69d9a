"""bench/ledger_cluster.py runs end to end at a tiny size against the real cluster and three
real node processes, and prints the promised JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the cluster bench: NATS and node processes

ROOT = Path(__file__).resolve().parent.parent


def test_cluster_bench_counts_every_entry_once_on_every_node(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "ledger_cluster.py"),
                           "--trades", "600", "--batch", "100", "--block-max", "150",
                           "--paced-s", "1", "--rate", "200", "--paced-batch", "50",
                           "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, check=True)
    result = json.loads(done.stdout)
    assert (result["trades"], result["paced_trades"]) == (600, 200)
    assert result["entries"] == 3 * 800                      # public, private, allocation
    assert (result["lost"], result["duplicated"], result["refused"]) == (0, 0, 0)
    assert result["roots_identical"] is True
    assert set(result["per_node"]) == {"production_base", "wholesale_market", "retail_market"}
    for node in result["per_node"].values():
        assert (node["leaves"], node["lost"], node["duplicated"]) == (2400, 0, 0)
    assert result["trades_per_s"] > 0 and result["baseline_trades_per_s"] > 0
    assert result["ratio_vs_solo"] == round(result["trades_per_s"]
                                            / result["baseline_trades_per_s"], 2)
    assert result["p99_ms"] >= result["p50_ms"] > 0
    where = result["where_the_time_goes"]
    assert set(where["node_stage_wall_us_per_trade"]) == set(result["per_node"])
    assert set(where["node_stage_wall_us_per_trade"]["retail_market"]) == {
        "fetch", "parse", "validate", "contract", "block", "store", "ack"}
    assert where["cpu_us_per_trade"]["total"] > 0
