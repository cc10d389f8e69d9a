"""bench/pipeline.py end to end at a tiny size: every paid sale is on every ledger node once.

The benchmark starts the real processes (Mosquitto, sandbox platform, gateway, bridge,
consumer app, a fleet of real terminals); the check counts trades on the nodes' own blocks.
No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.pipeline_parts.ledger_count import count_trades_on_ledger

pytestmark = pytest.mark.slow  # runs the pipeline bench: every service as a process

ROOT = Path(__file__).resolve().parent.parent


def test_pipeline_bench_loses_and_duplicates_nothing_on_the_ledger(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "pipeline.py"), "--terminals", "3",
         "--trades", "24", "--payment-trades", "15", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=400, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # one JSON line, nothing else
    result = json.loads(lines[0])
    trade, payment = result["trade_path"], result["payment_path"]
    assert (trade["trades"], trade["unpaid"]) == (24, 0)
    assert (payment["trades"], payment["unpaid"]) == (15, 0)
    assert result["lost"] == 0 and result["duplicated"] == 0
    assert result["ledger"]["expected"] == 39
    assert set(result["ledger"]["nodes"]) == {"production_base", "wholesale_market",
                                              "retail_market"}
    for node in result["ledger"]["nodes"].values():
        assert node["distinct_trades"] == node["trade_leaves"] == 39
    assert result["trade_path_per_s"] > 0 and result["payment_path_per_s"] > 0
    for run in (trade, payment):
        assert {"terminals", "mosquitto", "gateway", "platform", "bridge"} <= set(
            run["cpu_us_per_trade"])
        assert run["queue_depth"] and run["queue_depth"][-1]["ledger_trades"] <= run["trades"]
    # The count reads the blocks, not a counter: a paid sale that never reached the
    # ledger shows as lost on every node.
    missing = count_trades_on_ledger(tmp_path / "bridge", ["never-published-sale"])
    assert missing["lost"] == 1 and missing["duplicated"] == 0
