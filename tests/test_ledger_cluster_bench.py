"""bench/ledger_cluster.py runs end to end at a tiny size against the real cluster and
prints the promised JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs the cluster bench: NATS and node processes

ROOT = Path(__file__).resolve().parent.parent


def test_cluster_bench_counts_every_trade_once_and_names_its_baseline(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "ledger_cluster.py"),
                           "--trades", "600", "--batch", "100", "--block-max", "150",
                           "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=240, cwd=ROOT, check=True)
    result = json.loads(done.stdout)
    assert (result["trades"], result["entries"]) == (600, 1800)
    assert result["stream_messages"] == 12                  # 300 entries per flush, 2 each
    assert (result["lost"], result["duplicated"], result["malformed"]) == (0, 0, 0)
    assert result["trades_per_s"] > 0 and result["baseline_trades_per_s"] > 0
    assert result["ratio_vs_solo"] == round(result["trades_per_s"]
                                            / result["baseline_trades_per_s"], 2)
    assert result["publish_ack_ms"]["p99"] >= result["publish_ack_ms"]["p50"] > 0
    assert result["nodes"] is None                           # the node side's hook
