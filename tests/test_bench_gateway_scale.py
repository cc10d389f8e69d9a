"""bench/gateway_scale.py: its figures are medians and its ratios point the stated way, and
at a tiny size every scan on each configuration (both PostgreSQL instances included)
creates an order. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.gateway_scale_parts.proc_cpu import shares
from bench.gateway_scale_parts.summary import quantile, ratios, run_figures, summarise

ROOT = Path(__file__).resolve().parent.parent


def _run(rate: float, p99: float, load: float) -> dict:
    return {"scans": int(rate), "scans_per_s": rate, "p50_ms": p99 / 3, "p99_ms": p99,
            "errors": 1, "error_kinds": {"503": 1}, "cpu_share": {"load": load}}


def test_summary_takes_medians_and_the_median_runs_cpu() -> None:
    summary = summarise([_run(300, 90, 0.1), _run(100, 200, 0.2), _run(200, 50, 0.3)])
    assert summary["scans_per_s"] == 200 and summary["p99_ms"] == 90
    assert summary["rounds_scans_per_s"] == [300, 100, 200]
    assert summary["cpu_share"] == {"load": 0.3}  # the run of the median rate
    assert summary["errors"] == 3 and summary["error_kinds"] == {"503": 3}


def test_ratios_say_which_way() -> None:
    one, two = summarise([_run(100, 1, 0)]), summarise([_run(170, 1, 0)])
    sqlite = summarise([_run(160, 1, 0)])
    result = ratios(one, two, sqlite)
    assert result["two_vs_one_pg"] == 1.7 and result["two_vs_one_pg_met"]
    assert result["pg_vs_sqlite"] == 1.6 and result["faster_single_instance"] == "sqlite"
    assert not result["pg_vs_sqlite_met"]  # SQLite more than 1.5x faster
    assert ratios(sqlite, two, one)["faster_single_instance"] == "postgresql"


def test_figures_and_shares() -> None:
    assert quantile([], 0.99) == 0.0
    figures = run_figures([float(n) for n in range(1, 101)], {"403": 2}, 4.0)
    assert (figures["scans_per_s"], figures["p50_ms"], figures["p99_ms"]) == (25.0, 51, 100)
    assert figures["errors"] == 2
    cut = shares({"load": 1.0, "machine": 10.0}, {"load": 2.0, "machine": 16.0}, 4.0, 2)
    assert cut == {"load": 0.125, "other": 0.625, "idle": 0.25}


def test_tiny_run_creates_an_order_for_every_scan(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gateway_scale.py"), "--rounds", "1",
         "--warmup", "0.5", "--duration", "1.5", "--devices", "2", "--concurrency", "4",
         "--workers", "2", "--keep-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout  # one JSON line, nothing else
    result = json.loads(lines[0])
    for name in ("pg_one", "pg_two", "sqlite_one"):
        assert result[name]["errors"] == 0, result[name]
        assert result[name]["scans_per_s"] > 0
    # Both instances on the shared database answered (same keys: no bad_mac).
    assert all(count > 0 for count in result["pg_two"]["scans_by_instance"])
    assert len(result["pg_two"]["scans_by_instance"]) == 2
    # Shares of the machine (CPU ticks are 10 ms: a short run's may be 0).
    for share in result["pg_one"]["cpu_share"].values():
        assert 0 <= share <= 1
    assert set(result["pg_one"]["cpu_share"]) >= {"gateways", "platform", "postgres", "load",
                                                  "other", "idle"}
