"""The ledger benchmarks run end to end at tiny sizes and print the promised JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs a bench script as a process

ROOT = Path(__file__).resolve().parent.parent


def run_bench(name: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / name), *args],
                          capture_output=True, text=True, timeout=240, cwd=ROOT, check=True)
    return json.loads(done.stdout)


def test_commit_bench_reports_throughput_and_the_fabric_ratio():
    result = run_bench("ledger_commit.py", "--trades", "600", "--block-max", "200")
    assert result["committed"] == 600 and result["blocks"] == 3
    assert result["trades_per_s"] > 0
    assert result["ratio_vs_fabric_250"] == round(result["trades_per_s"] / 250, 1)


def test_query_bench_reports_latency_bloom_verify_and_memory(tmp_path):
    result = run_bench("ledger_query.py", "--trades", "900", "--samples", "40",
                       "--block-max", "100", "--data-dir", str(tmp_path))
    assert (result["trades"], result["blocks"]) == (900, 9)
    assert result["trace_query"]["found"] == 40
    assert result["trace_query"]["p99_ms"] >= result["trace_query"]["p50_ms"] > 0
    assert result["absent_lookup"]["with_bloom_us"] > 0
    assert result["verify"]["ok"] is True
    assert result["rss_mb"] > 0 and result["peak_rss_mb"] >= result["rss_mb"]
    again = run_bench("ledger_query.py", "--trades", "900", "--samples", "5",
                      "--data-dir", str(tmp_path))
    assert again["trades"] == 900 and again["fill_seconds"] < 5  # reused, not refilled
