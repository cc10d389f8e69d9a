"""The headless demo's progress on a terminal: charged, paid, failed, on the ledger.

rich draws the bars (on stderr, so ``--json`` output on stdout stays one clean object);
off when stderr is not a terminal, where a log would fill with redraws.
"""

from __future__ import annotations

import sys
import threading
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

__all__ = ["Progress", "wants_progress"]


def wants_progress(quiet: bool) -> bool:
    """Bars only for a person watching: stderr is a terminal and JSON was not asked for."""
    return not quiet and sys.stderr.isatty()


class Progress:
    """Counts that threads bump; drawn only when ``enabled``."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self._lock = threading.Lock()
        self.counts = {"charged": 0, "paid": 0, "failed": 0, "on_ledger": 0}
        self._bars: RichProgress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Progress:
        if self.enabled:
            self._bars = RichProgress(
                TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self._bars.start()
            for name in ("charged", "paid", "on_ledger", "failed"):
                self._tasks[name] = self._bars.add_task(name.replace("_", " "),
                                                        total=self.total)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bars is not None:
            self._bars.stop()

    def _bump(self, name: str, to: int | None = None) -> None:
        with self._lock:
            self.counts[name] = self.counts[name] + 1 if to is None else to
            value = self.counts[name]
        if self._bars is not None:
            self._bars.update(self._tasks[name], completed=value)

    def charged(self) -> None:
        self._bump("charged")

    def paid(self) -> None:
        self._bump("paid")

    def failed(self) -> None:
        self._bump("failed")

    def on_ledger(self, count: int) -> None:
        self._bump("on_ledger", to=count)
