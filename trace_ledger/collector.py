"""The checkpoint collector: asks every organisation's node for its signed checkpoint at
one size, merges the verified signatures into one note, and can have witnesses cosign it.

The size is the smallest height among the nodes that answer, so every node that answers
can sign it (each signs only blocks it validated itself). The nodes' notes are checked
against the trust file's pinned keys by :func:`trace_ledger.cosigned.merge_notes`; a
node's ``/v1/keys`` is never asked. A witness (C2SP tlog-witness) is sent the merged note
with a consistency proof from the size it last cosigned, which it names when it answers
409; the proof comes from any node and is checked by the witness itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import requests

from market_protocol.witness_request import SIZE_TYPE, format_add_checkpoint

from .cosigned import CheckpointTrust, merge_notes

__all__ = ["collect", "witness_cosign"]


def _heights(session: requests.Session, urls: Sequence[str], timeout_s: float,
             problems: list[dict[str, str]]) -> dict[str, int]:
    heights = {}
    for url in urls:
        try:
            answer = session.get(url + "/v1/head", timeout=timeout_s)
            answer.raise_for_status()
            heights[url] = int(answer.json()["height"])
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            problems.append({"node": url, "problem": f"no head: {type(exc).__name__}: {exc}"})
    return heights


def collect(urls: Sequence[str], trust: CheckpointTrust, *, timeout_s: float = 5.0,
            size: int | None = None) -> dict[str, Any]:
    """``{"note", "summary"}``: the merged note (None when no node's note was usable) and
    what was asked and found. ``size`` overrides the smallest height."""
    session = requests.Session()
    urls = [u.rstrip("/") for u in urls]
    problems: list[dict[str, str]] = []
    heights = _heights(session, urls, timeout_s, problems)
    if size is None:
        size = min(heights.values()) if heights else 0
    notes = {}
    for url in heights:
        try:
            answer = session.get(url + "/v1/checkpoint", params={"size": size},
                                 timeout=timeout_s)
        except requests.RequestException as exc:
            problems.append({"node": url, "problem": f"no checkpoint: {exc}"})
            continue
        if answer.status_code != 200:
            problems.append({"node": url, "problem": f"no checkpoint: HTTP "
                             f"{answer.status_code}: {answer.text[:200]}"})
            continue
        notes[url] = answer.text
    merged, refused = merge_notes(notes, trust)
    summary: dict[str, Any] = {"size": size, "heights": heights, "asked": urls,
                               "problems": problems + refused}
    summary.update(merged.to_dict() if merged else {"final": False, "signed_by": []})
    return {"note": merged.note if merged else None, "summary": summary}


def _consistency(session: requests.Session, nodes: Sequence[str], old: int, new: int,
                 timeout_s: float) -> list[bytes]:
    if old == 0 or old == new:
        return []
    for url in nodes:
        try:
            answer = session.get(url.rstrip("/") + "/v1/consistency",
                                 params={"old": old, "new": new}, timeout=timeout_s)
            if answer.status_code == 200:
                return [bytes.fromhex(h) for h in answer.json()["proof"]]
        except (requests.RequestException, ValueError, KeyError):
            continue
    raise RuntimeError(f"no node gave a consistency proof from {old} to {new}")


def witness_cosign(witness_url: str, note: str, size: int, nodes: Sequence[str], *,
                   timeout_s: float = 5.0) -> tuple[str | None, str]:
    """Submit ``note`` (of tree ``size``) to a witness: ``(signature lines, what
    happened)``; the lines are None when the witness did not cosign."""
    session = requests.Session()
    url = witness_url.rstrip("/") + "/add-checkpoint"
    old = 0
    for _ in range(3):  # old 0 first; a 409 names the size the witness holds
        try:
            proof = _consistency(session, nodes, old, size, timeout_s)
            answer = session.post(url, data=format_add_checkpoint(old, proof, note).encode(),
                                  timeout=timeout_s)
        except (requests.RequestException, RuntimeError) as exc:
            return None, f"witness {witness_url}: {exc}"
        if answer.status_code == 200:
            return answer.text, f"witness {witness_url} cosigned size {size} (old {old})"
        if answer.status_code == 409 and answer.headers.get("Content-Type", "").startswith(
                SIZE_TYPE) and answer.text.strip().isdigit():
            held = int(answer.text.strip())
            if held > size:
                return None, (f"witness {witness_url} holds a larger tree ({held}) than "
                              f"{size}: it cosigns no rollback")
            if held == old:
                break
            old = held
            continue
        return None, f"witness {witness_url}: HTTP {answer.status_code}: {answer.text[:200]}"
    return None, f"witness {witness_url}: no agreement on the old size"

