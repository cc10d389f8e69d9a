"""The witness's HTTP service, following C2SP tlog-witness.

``POST /add-checkpoint``: the body is an old size line, consistency proof lines, an empty
line and a checkpoint note. The witness cosigns (a C2SP tlog-cosignature, ``cosignature/v1``
with a timestamp) only when, in this order:

* the body is well formed (else 400) and the origin is the trust file's (else 404);
* the note verifies against the trust file's pinned node keys and carries the quorum of
  organisations (else 403: a known key's bad signature, or too few organisations);
* the old size is at most the checkpoint's (else 400) and equals the size it last
  cosigned for the origin, 0 at first (else 409, body ``<size>\\n`` as
  ``text/x.tlog.size``: the client retries from there; an older checkpoint, a rollback,
  is refused this way);
* an empty tree has the empty root, a proof from 0 is empty, an equal size has the equal
  root, and the consistency proof verifies from the stored root (else 422: a fork).

The new checkpoint is stored before the cosignature line is returned. Refusals of notes
whose signatures verified are kept as evidence. ``GET /<sha256(origin) hex>/checkpoint``
serves the latest cosigned checkpoint with every signature; errors other than 409 are JSON
``{"error", "message"}``.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from flask import Flask, Response, jsonify, request

from market_protocol import merkle
from market_protocol.checkpoint import CheckpointError, parse_checkpoint
from market_protocol.http_errors import ApiError, install_json_errors
from market_protocol.signed_note import NoteError, Signer, parse_note
from market_protocol.witness_request import (
    SIZE_TYPE,
    AddCheckpoint,
    WitnessRequestError,
    parse_add_checkpoint,
)

from ..cosigned import CheckpointTrust, check_cosigned
from .state import Latest, WitnessState

__all__ = ["create_app", "MAX_BODY"]

MAX_BODY = 64 * 1024


class _Conflict(Exception):
    def __init__(self, held: int, reason: str) -> None:
        super().__init__(reason)
        self.held = held


def _parse(body: bytes) -> tuple[AddCheckpoint, Any]:
    try:
        submitted = parse_add_checkpoint(body)
        text, _ = parse_note(submitted.note)
        return submitted, parse_checkpoint(text)
    except (WitnessRequestError, NoteError, CheckpointError) as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc


def _consistent(latest: Latest | None, old: int, proof: tuple[bytes, ...],
                checkpoint: Any) -> None:
    """Raise ApiError 422 unless the checkpoint extends the stored one by ``proof``."""
    size, root = checkpoint.size, checkpoint.root_hash
    if size == 0 and root != merkle.empty_root():
        raise ApiError(422, "bad_root", "a checkpoint of size 0 must have the empty root")
    if old == 0:
        if proof:
            raise ApiError(422, "bad_proof", "a proof from size 0 must be empty")
        return
    assert latest is not None
    if old == size:
        if root != latest.root:
            raise ApiError(422, "fork", f"size {size} was cosigned with another root: "
                           "the log forked")
        return
    if not merkle.verify_consistency(old, size, latest.root, root, proof):
        raise ApiError(422, "fork", f"no consistent extension of the cosigned size {old} "
                       f"to {size}: the log forked or the proof is wrong")


def create_app(state: WitnessState, trust: CheckpointTrust, signer: Signer) -> Flask:
    """The witness's app; ``signer`` holds its cosignature key (type 0x04)."""
    app = Flask(__name__)
    app.config.update(JSON_SORT_KEYS=False, MAX_CONTENT_LENGTH=MAX_BODY)
    install_json_errors(app)

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        return jsonify({"ok": True, "name": signer.name, "vkey": signer.verifier.vkey(),
                        "origin": trust.origin})

    @app.post("/add-checkpoint")
    def add_checkpoint():  # type: ignore[no-untyped-def]
        raw = request.get_data()
        submitted, checkpoint = _parse(raw)
        if checkpoint.origin != trust.origin:
            raise ApiError(404, "unknown_origin", f"this witness knows only {trust.origin!r}")
        try:
            cosigned = check_cosigned(submitted.note, trust)
        except NoteError as exc:
            raise ApiError(403, "bad_signature", str(exc)) from exc
        if len(cosigned.signed_by) < trust.quorum:
            raise ApiError(403, "no_quorum", f"signed by {cosigned.signed_by}; the trust file "
                           f"needs {trust.quorum} organisations")
        if submitted.old_size > checkpoint.size:
            reason = (f"old size {submitted.old_size} is larger than the checkpoint's "
                      f"{checkpoint.size}")
            state.refused(trust.origin, 400, reason, raw.decode())
            raise ApiError(400, "bad_old_size", reason)
        timestamp = max(1, int(time.time()))
        text, signatures = parse_note(cosigned.note)
        line = signer.signature(text, timestamp).line()
        own = signer.verifier
        kept = text + "\n" + "".join(s.line() for s in signatures
                                     if (s.name, s.key_id) != (own.name, own.key_id))

        def decide(latest: Latest | None) -> Latest:
            held = latest.size if latest else 0
            if submitted.old_size != held:
                raise _Conflict(held, f"old size {submitted.old_size} is not the cosigned "
                                f"size {held}" + (" (a rollback: the checkpoint is smaller)"
                                                 if checkpoint.size < held else ""))
            _consistent(latest, held, submitted.proof, checkpoint)
            return Latest(trust.origin, checkpoint.size, checkpoint.root_hash,
                          kept + line, timestamp)

        try:
            state.advance(trust.origin, decide)
        except _Conflict as exc:
            state.refused(trust.origin, 409, str(exc), raw.decode())
            return Response(f"{exc.held}\n", status=409, content_type=SIZE_TYPE,
                            headers={"X-Tracepay-Reason": str(exc)})
        except ApiError as exc:
            state.refused(trust.origin, exc.status, exc.message, raw.decode())
            raise
        return Response(line, content_type="text/plain; charset=utf-8")

    @app.get("/<origin_hash>/checkpoint")
    def latest(origin_hash: str):  # type: ignore[no-untyped-def]
        if origin_hash != hashlib.sha256(trust.origin.encode()).hexdigest():
            raise ApiError(404, "unknown_origin", "no log with that origin hash")
        found = state.latest(trust.origin)
        if found is None:
            raise ApiError(404, "not_found", "no checkpoint cosigned yet")
        return Response(found.note, content_type="text/plain; charset=utf-8")

    @app.get("/v1/refused")
    def refused():  # type: ignore[no-untyped-def]
        return jsonify({"refused": state.refusals()})

    return app
