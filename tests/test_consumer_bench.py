"""The paint benchmark runs end to end at a tiny size and reports what it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs a bench script as a process

BENCH = Path(__file__).resolve().parents[1] / "bench" / "consumer_paint.py"


def test_paint_benchmark_prints_one_json_object():
    completed = subprocess.run([sys.executable, str(BENCH), "--loads", "2"],
                               capture_output=True, text=True, timeout=240)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout)
    assert result["loads"] == 2
    assert result["external_requests"] == 0
    assert 0 < result["page_bytes"] <= result["page_weight_budget_bytes"] == 200 * 1024
    for key in ("first_paint_ms", "warm_tab_first_paint_ms", "server_response_ms"):
        assert result[key]["p50"] > 0, key
    assert isinstance(result["meets_target"], bool)
