"""An organisation's node writing its store in a process of its own.

In one process, the three nodes' SQLite writes share the interpreter lock with the orderer
building the next block, so the ledger commits on one core however many there are. Run as
processes, the nodes store block N on the other cores while the orderer builds block N+1;
the block travels to them pickled over a pipe. Reads stay in the ledger's process (SQLite's
WAL lets readers and the node's writer work side by side).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .node_store import NodeStore

__all__ = ["NodeProcess", "NodeProcessError"]

_STOP = b""
_OK = b"ok"


class NodeProcessError(RuntimeError):
    """The node's process could not store a block, or is gone."""


class NodeProcess:
    """Sends blocks to a node process and waits for it to store them, one at a time."""

    def __init__(self, org: str, path: Path) -> None:
        context = multiprocessing.get_context("spawn")  # the ledger runs threads: no fork
        self.org = org
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(org, str(path), child),
                                        name=f"ledger-node-{org}", daemon=True)
        self._process.start()
        child.close()
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @staticmethod
    def pack(value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def write_block(self, shared: bytes, records: bytes) -> None:
        """Store one block: ``shared`` is the packed (block row, leaf batch) every node gets,
        ``records`` the packed off-chain records this node may keep."""
        with self._lock:
            try:
                self._pipe.send_bytes(shared)
                self._pipe.send_bytes(records)
                reply = self._pipe.recv_bytes()
            except (EOFError, OSError) as exc:
                raise NodeProcessError(f"node process of {self.org} is gone: {exc}") from exc
        if reply != _OK:
            raise NodeProcessError(f"node {self.org}: {reply.decode(errors='replace')}")

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            with contextlib.suppress(OSError):  # already gone: nothing to stop
                self._pipe.send_bytes(_STOP)
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(timeout)
            self._pipe.close()


def _serve(org: str, path: str, pipe: Connection) -> None:
    """The node process: store each block received; answer ``ok`` or the error."""
    store = NodeStore(org, Path(path))
    try:
        while (shared := pipe.recv_bytes()) != _STOP:
            records = pipe.recv_bytes()
            try:
                block_row, leaves = pickle.loads(shared)
                store.write_block(block_row, leaves, pickle.loads(records))
            except Exception as exc:  # reported to the ledger, which stops loudly
                pipe.send_bytes(f"{type(exc).__name__}: {exc}".encode())
            else:
                pipe.send_bytes(_OK)
    except EOFError:
        pass  # the ledger's process is gone
    finally:
        store.close()
