"""``NodeReader``: reads from any of several organisation nodes, failing over to the next
when one does not answer, with the read methods the bridge and the consumer use on
``Ledger`` (locate, get, proof, head, block, consistency, ledger_root, public_keys), and
each node's signed checkpoint.

Each node signs its blocks with its own key only, and every honest node cuts the same
headers; so a proof's block carries the signature of every node that holds the same block
hash (gathered from their ``/v1/blocks/<h>``), which a verifier checks against each
organisation's pinned key: a block is final when every organisation signed it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import requests

from .entries import Location, StoredEntry

__all__ = ["NodeReader", "NoNodeAnswered"]

#: Blocks whose gathered signatures are remembered (a block, once on every node, is final).
_COSIGNED_KEPT = 10_000


class NoNodeAnswered(RuntimeError):
    """Every configured node failed to answer; the message lists why each did."""


class NodeReader:
    """Asks the nodes in turn, starting with the last one that answered."""

    def __init__(self, urls: Sequence[str], *, timeout_s: float = 3.0) -> None:
        if not urls:
            raise ValueError("NodeReader needs at least one node URL")
        self.urls, self.timeout_s = [u.rstrip("/") for u in urls], timeout_s
        self._first = 0
        self._session = requests.Session()
        #: (height, block hash) -> every configured node's signatures, once all had it.
        self._cosigned: dict[tuple[int, str], list[dict[str, Any]]] = {}

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """The JSON of the first node that answers (None for its 404)."""
        failures = []
        for offset in range(len(self.urls)):
            index = (self._first + offset) % len(self.urls)
            try:
                answer = self._session.get(self.urls[index] + path, params=params,
                                           timeout=self.timeout_s)
            except requests.RequestException as exc:
                failures.append(f"{self.urls[index]}: {type(exc).__name__}")
                continue
            if answer.status_code >= 500:
                failures.append(f"{self.urls[index]}: HTTP {answer.status_code}")
                continue
            self._first = index
            if answer.status_code == 404:
                return None
            if answer.status_code >= 400:
                raise ValueError(answer.json().get("message", answer.text))
            return answer.json()
        raise NoNodeAnswered(f"no ledger node answered {path}: {'; '.join(failures)}")

    def locate(self, trace_key: str) -> list[Location]:
        found = self._get("/v1/locate", {"key": trace_key}) or {"locations": []}
        return [Location(x["record_id"], x["kind"], x["height"], x["index"])
                for x in found["locations"]]

    def get(self, record_id: str, org: str | None = None) -> StoredEntry | None:
        x = self._get("/v1/records/" + quote(record_id, safe=""))
        if x is None:
            return None
        return StoredEntry(x["record_id"], x["kind"], x["height"], x["index"],
                           x["record_hash"], x["leaf_hash"], x["trace_keys"], x["record"],
                           x["record_canonical"], tuple(x["held_by"]))

    def proof(self, record_id: str, org: str | None = None) -> dict[str, Any] | None:
        """One node's proof, its block signed by every node holding the same block."""
        found = self._get("/v1/proofs/" + quote(record_id, safe=""))
        if found is None or len(self.urls) == 1:
            return found
        block = found["block"]
        signatures = self._signatures(int(block["header"]["height"]), block["block_hash"],
                                      block["signatures"])
        return {**found, "block": {**block, "signatures": signatures}}

    def _signatures(self, height: int, block_hash: str,
                    own: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``own`` and each other node's signature of block ``height`` where its hash is
        ``block_hash`` (a node lagging behind, or with another block there, adds none)."""
        cached = self._cosigned.get((height, block_hash))
        if cached is not None:
            return cached
        by_signer = {s["signer"]: s for s in own}
        complete = True
        for url in self.urls:
            try:
                answer = self._session.get(f"{url}/v1/blocks/{height}", timeout=self.timeout_s)
                block = answer.json() if answer.status_code == 200 else None
            except (requests.RequestException, ValueError):
                block = None
            if not isinstance(block, dict) or block.get("block_hash") != block_hash:
                complete = False
                continue
            for signature in block.get("signatures") or []:
                by_signer.setdefault(signature["signer"], signature)
        signatures = sorted(by_signer.values(), key=lambda s: s["signer"])
        if complete:
            if len(self._cosigned) >= _COSIGNED_KEPT:
                self._cosigned.clear()
            self._cosigned[(height, block_hash)] = signatures
        return signatures

    def head(self) -> dict[str, Any]:
        """``Ledger.head``'s members (``trades``, ``ledger_root``) and the node's own."""
        head = self._get("/v1/head")
        return {**head, "trades": head["size"], "ledger_root": head["root"]}

    def block(self, height: int) -> dict[str, Any] | None:
        return self._get(f"/v1/blocks/{int(height)}")

    def consistency(self, old_size: int, new_size: int) -> list[str]:
        return self._get("/v1/consistency", {"old": old_size, "new": new_size})["proof"]

    def ledger_root(self, size: int) -> str:
        return self._get("/v1/consistency", {"old": size, "new": size})["new_root"]

    def checkpoint(self, size: int | None = None) -> str | None:
        """The first answering node's signed checkpoint note (its own signature only; merge
        several with :func:`trace_ledger.collector.collect`); None when no node that
        answered holds ``size`` blocks."""
        params = None if size is None else {"size": size}
        for offset in range(len(self.urls)):
            url = self.urls[(self._first + offset) % len(self.urls)]
            try:
                answer = self._session.get(url + "/v1/checkpoint", params=params,
                                           timeout=self.timeout_s)
            except requests.RequestException:
                continue
            if answer.status_code == 200:
                return answer.text
        return None

    def public_keys(self) -> dict[str, str]:
        """Every reachable node's own key (each node serves only its own)."""
        keys: dict[str, str] = {}
        for url in self.urls:
            try:
                keys.update(self._session.get(url + "/v1/keys", timeout=self.timeout_s).json())
            except (requests.RequestException, ValueError):
                continue
        return keys
