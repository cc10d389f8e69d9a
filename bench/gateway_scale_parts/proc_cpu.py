"""CPU seconds of groups of processes, from ``/proc`` (Linux), to say where the cores went.

A benchmark on two cores measures the machine as much as the code: these counters show
how much of it the gateways, the platform, PostgreSQL and the load generator each took
during a run, and how much went to work that is not the benchmark's (other users' jobs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

__all__ = ["CpuGroups", "machine_busy_s", "postmaster_pid", "shares"]

_TICK = os.sysconf("SC_CLK_TCK")


def _stats() -> Iterable[tuple[int, int, int, float]]:
    """(pid, parent pid, session id, CPU seconds) of every live process."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        # After the command: state ppid pgrp session ... utime(12th) stime(13th).
        yield (int(entry.name), int(fields[1]), int(fields[3]),
               (int(fields[11]) + int(fields[12])) / _TICK)


def machine_busy_s() -> float:
    """CPU seconds every core spent not idle since boot (``/proc/stat``, all users)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK


def postmaster_pid(data_dir: Path) -> int:
    """The PostgreSQL server's main process: the first line of ``postmaster.pid``."""
    return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


class CpuGroups:
    """Named groups of processes; ``sample()`` gives each group's CPU seconds so far.

    A group is a test on (pid, ppid, session): services started by ``ServiceProcess`` are
    each their own session (workers included); PostgreSQL is its postmaster and the
    backends it forked; a load process is its pid.
    """

    def __init__(self) -> None:
        self._groups: dict[str, Callable[[int, int, int], bool]] = {}

    def add_sessions(self, name: str, sessions: Iterable[int]) -> None:
        wanted = frozenset(sessions)
        self._groups[name] = lambda pid, ppid, sid: sid in wanted

    def add_tree(self, name: str, root: int) -> None:
        self._groups[name] = lambda pid, ppid, sid: root in (pid, ppid)

    def add_pids(self, name: str, pids: Iterable[int]) -> None:
        wanted = frozenset(pids)
        self._groups[name] = lambda pid, ppid, sid: pid in wanted

    def sample(self) -> dict[str, float]:
        totals = dict.fromkeys(self._groups, 0.0)
        for pid, ppid, sid, seconds in _stats():
            for name, member in self._groups.items():
                if member(pid, ppid, sid):
                    totals[name] += seconds
                    break
        totals["machine"] = machine_busy_s()
        return totals


def shares(before: Mapping[str, float], after: Mapping[str, float], wall_s: float,
           cpus: int) -> dict[str, float]:
    """Each group's share of the machine's capacity (cores x wall time) between two
    samples; ``other`` is busy time no group accounts for (other work on the machine)."""
    capacity = wall_s * cpus
    used = {name: max(0.0, after[name] - before[name]) for name in after}
    machine = used.pop("machine")
    result = {name: round(seconds / capacity, 3) for name, seconds in used.items()}
    result["other"] = round(max(0.0, machine - sum(used.values())) / capacity, 3)
    result["idle"] = round(max(0.0, 1 - machine / capacity), 3)
    return result
