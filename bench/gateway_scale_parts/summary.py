"""From measured runs to the figures ``bench/gateway_scale.py`` prints (no I/O).

The machine is noisy, so every figure is a median over rounds: a configuration's
``scans_per_s``, ``p50_ms`` and ``p99_ms`` are each the median of its rounds' values, and
its CPU shares are those of its median run (by throughput). The ratios are taken
between the medians; ``*_by_round`` are the ratios within each round, ``*_per_cpu`` the
ratios of scans per CPU-second of the benchmark's processes (less noisy than rates on a
machine that other work shares).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["quantile", "run_figures", "summarise", "ratios", "TWO_VS_ONE_GOAL",
           "PG_VS_SQLITE_GOAL"]

#: Two gateway instances on one PostgreSQL should do at least this many times one's scans.
TWO_VS_ONE_GOAL = 1.6
#: One instance on PostgreSQL should be within this factor of one on SQLite.
PG_VS_SQLITE_GOAL = 1.5


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank below) of ``values``; 0.0 when there are none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def run_figures(latencies: Sequence[float], errors: Mapping[str, int], seconds: float
                ) -> dict[str, Any]:
    """One run's figures: answered scans (200, an order created) per second and quantiles."""
    return {"scans": len(latencies), "scans_per_s": round(len(latencies) / seconds, 1),
            "p50_ms": quantile(latencies, 0.50), "p99_ms": quantile(latencies, 0.99),
            "errors": sum(errors.values()), "error_kinds": dict(errors)}


def summarise(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A configuration's rounds as one: medians, each round's rate, the median run's CPU."""
    if not runs:
        raise ValueError("a configuration needs at least one run to summarise")
    by_rate = sorted(runs, key=lambda run: run["scans_per_s"])
    middle = by_rate[(len(by_rate) - 1) // 2]
    return {
        "scans_per_s": round(statistics.median(run["scans_per_s"] for run in runs), 1),
        "p50_ms": round(statistics.median(run["p50_ms"] for run in runs), 2),
        "p99_ms": round(statistics.median(run["p99_ms"] for run in runs), 2),
        "scans_per_cpu_s": round(statistics.median(run.get("scans_per_cpu_s", 0.0)
                                                   for run in runs), 1),
        "rounds_scans_per_s": [run["scans_per_s"] for run in runs],
        "rounds_p99_ms": [run["p99_ms"] for run in runs],
        "errors": sum(run["errors"] for run in runs),
        "error_kinds": dict(sum((Counter(run["error_kinds"]) for run in runs), Counter())),
        **{key: value for key, value in middle.items()
           if key not in ("scans_per_s", "p50_ms", "p99_ms", "errors", "error_kinds",
                          "scans", "scans_per_cpu_s")},
    }


def _by_round(top: Mapping[str, Any], bottom: Mapping[str, Any]) -> list[float]:
    """The ratio within each round (the two runs were minutes apart at most)."""
    return [round(a / b, 2) if b else 0.0 for a, b in
            zip(top["rounds_scans_per_s"], bottom["rounds_scans_per_s"], strict=True)]


def _ratio(top: Mapping[str, Any], bottom: Mapping[str, Any], key: str) -> float:
    return round(top[key] / bottom[key], 2) if bottom.get(key) else 0.0


def ratios(pg_one: Mapping[str, Any], pg_two: Mapping[str, Any],
           sqlite_one: Mapping[str, Any]) -> dict[str, Any]:
    """``two_vs_one_pg`` (two instances' rate over one's) and ``pg_vs_sqlite`` (SQLite's
    rate over PostgreSQL's, one instance each: above 1 SQLite is faster), with the goals."""
    two_vs_one = pg_two["scans_per_s"] / pg_one["scans_per_s"] if pg_one["scans_per_s"] \
        else 0.0
    sqlite_over_pg = sqlite_one["scans_per_s"] / pg_one["scans_per_s"] \
        if pg_one["scans_per_s"] else float("inf")
    return {
        "two_vs_one_pg": round(two_vs_one, 3),
        # Per CPU-second of the benchmark's processes: 1 means a second instance costs
        # nothing extra per scan, so it scales with the cores it is given.
        "two_vs_one_pg_per_cpu": _ratio(pg_two, pg_one, "scans_per_cpu_s"),
        "two_vs_one_pg_by_round": _by_round(pg_two, pg_one),
        "two_vs_one_pg_goal": TWO_VS_ONE_GOAL,
        "two_vs_one_pg_met": two_vs_one >= TWO_VS_ONE_GOAL,
        "pg_vs_sqlite": round(sqlite_over_pg, 3),
        "pg_vs_sqlite_by_round": _by_round(sqlite_one, pg_one),
        "pg_vs_sqlite_per_cpu": _ratio(sqlite_one, pg_one, "scans_per_cpu_s"),
        "pg_vs_sqlite_is": "sqlite_rate / pg_rate, one instance each",
        "faster_single_instance": "sqlite" if sqlite_over_pg > 1 else "postgresql",
        "pg_vs_sqlite_goal": PG_VS_SQLITE_GOAL,
        "pg_vs_sqlite_met": sqlite_over_pg <= PG_VS_SQLITE_GOAL,
    }
