"""The C2SP tlog-witness ``add-checkpoint`` request body (c2sp.org/tlog-witness).

An old size line (``old <decimal>``), zero to 63 base64 consistency proof lines, an empty
line, then the checkpoint note. The old size is the tree size the witness last cosigned
for the origin (0 when none); the proof is an RFC 6962 consistency proof from it to the
checkpoint's size. A witness answering 409 names the size it holds as ``<decimal>\\n``
with the content type :data:`SIZE_TYPE`. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SIZE_TYPE", "MAX_PROOF_LINES", "WitnessRequestError", "AddCheckpoint",
           "format_add_checkpoint", "parse_add_checkpoint"]

SIZE_TYPE = "text/x.tlog.size"
MAX_PROOF_LINES = 63
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


class WitnessRequestError(ValueError):
    """A body that is not an add-checkpoint request (the witness answers 400)."""


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    note: str


def format_add_checkpoint(old_size: int, proof: Sequence[bytes], note: str) -> str:
    """The request body for ``note`` with a consistency proof from ``old_size``."""
    if old_size < 0 or len(proof) > MAX_PROOF_LINES:
        raise WitnessRequestError("old size must be >= 0 and the proof at most 63 hashes")
    lines = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return "".join(line + "\n" for line in lines) + "\n" + note


def parse_add_checkpoint(body: bytes | str) -> AddCheckpoint:
    """Parse a request body; WitnessRequestError says what is malformed."""
    if isinstance(body, bytes):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            raise WitnessRequestError("the body is not UTF-8") from None
    head, sep, note = body.partition("\n\n")
    if not sep or not note:
        raise WitnessRequestError("expected an old size line, proof lines, an empty line "
                                  "and a checkpoint note")
    first, *proof_lines = head.split("\n")
    word, _, size = first.partition(" ")
    if word != "old" or not _SIZE.fullmatch(size) or int(size) >= 2**64:
        raise WitnessRequestError(f"bad old size line {first[:40]!r}")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise WitnessRequestError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for line in proof_lines:
        try:
            digest = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise WitnessRequestError(f"proof line {line[:60]!r} is not base64") from None
        if len(digest) != 32:
            raise WitnessRequestError("a proof line must be a 32-byte hash")
        proof.append(digest)
    return AddCheckpoint(int(size), tuple(proof), note)
