"""Cosigned checkpoints of the ledger: what makes one tree head final.

Each organisation's node signs, with its own key only, the C2SP checkpoint of the block
hashes it has validated and stored (origin, number of blocks, RFC 6962 root over the
``leaf_hash(block_hash)`` of the first N blocks: the same tree as the node's head). A
collector asks every node for the checkpoint at one size, checks each note against the
keys pinned in the trust file (never keys a node serves), and merges the signature lines
into one note. The checkpoint is *final* when the trust file's quorum of organisations
(default: all of them) and its required number of witnesses signed that same body.

Pure: no I/O. The trust file is read by :mod:`trace_ledger.trust`, the nodes are asked by
:mod:`trace_ledger.collector`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from market_protocol import merkle
from market_protocol.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from market_protocol.signed_note import (
    COSIGNATURE_V1,
    ED25519,
    NoteError,
    NoteSignature,
    VerifierKey,
    parse_note,
    verify_note,
)

__all__ = ["DEFAULT_ORIGIN", "CheckpointTrust", "Cosigned", "node_key_name",
           "checkpoint_for", "check_cosigned", "merge_notes", "signature_lines"]

#: The origin line of the ledger's checkpoints: the log's name, after its JetStream stream.
DEFAULT_ORIGIN = "tracepay.ledger/LEDGER"


def node_key_name(org: str) -> str:
    """The signed-note key name of an organisation's node key."""
    return f"tracepay-{org}"


def checkpoint_for(origin: str, block_hashes: Sequence[bytes]) -> Checkpoint:
    """The checkpoint of a ledger whose blocks have ``block_hashes`` (in height order)."""
    leaves = [merkle.leaf_hash(h) for h in block_hashes]
    return Checkpoint(origin, len(leaves), merkle.root(leaves))


@dataclass(frozen=True, slots=True)
class CheckpointTrust:
    """The checkpoint part of a trust file: the log's origin, each organisation's pinned
    node key (type 0x01), how many organisations must sign, and optional witnesses
    (cosignature keys, type 0x04) of which ``witness_quorum`` must cosign."""

    origin: str
    node_keys: Mapping[str, VerifierKey]
    quorum: int
    witnesses: tuple[VerifierKey, ...] = ()
    witness_quorum: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.quorum <= len(self.node_keys):
            raise ValueError(f"quorum {self.quorum} must be in 1..{len(self.node_keys)}")
        if not 0 <= self.witness_quorum <= len(self.witnesses):
            raise ValueError(f"witness quorum {self.witness_quorum} must be in "
                             f"0..{len(self.witnesses)}")
        if any(k.sig_type != ED25519 for k in self.node_keys.values()):
            raise ValueError("node keys must be Ed25519 note keys (type 0x01)")
        if any(k.sig_type != COSIGNATURE_V1 for k in self.witnesses):
            raise ValueError("witness keys must be Ed25519 cosignature keys (type 0x04)")

    def org_of(self, key: VerifierKey) -> str | None:
        return next((org for org, k in self.node_keys.items() if k == key), None)

    def all_keys(self) -> list[VerifierKey]:
        return [*self.node_keys.values(), *self.witnesses]


@dataclass(slots=True)
class Cosigned:
    """A checkpoint note and who, among the pinned keys, signed it."""

    checkpoint: Checkpoint
    note: str
    signed_by: list[str]
    witnessed_by: list[str]
    quorum: int
    witness_quorum: int
    witness_times: dict[str, int] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return (len(self.signed_by) >= self.quorum
                and len(self.witnessed_by) >= self.witness_quorum)

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.checkpoint.origin, "size": self.checkpoint.size,
                "root": self.checkpoint.root_hash.hex(), "final": self.final,
                "signed_by": self.signed_by, "quorum": self.quorum,
                "witnessed_by": self.witnessed_by, "witness_quorum": self.witness_quorum,
                "witness_times": self.witness_times}


def signature_lines(note: str, keys: Sequence[VerifierKey]) -> list[NoteSignature]:
    """The signature lines of ``note`` made by ``keys`` (name and key ID match), in order."""
    _, signatures = parse_note(note)
    wanted = {(k.name, k.key_id) for k in keys}
    return [s for s in signatures if (s.name, s.key_id) in wanted]


def check_cosigned(note: str, trust: CheckpointTrust) -> Cosigned:
    """Verify ``note`` against the pinned keys only: its body must be a checkpoint of the
    trusted origin; any pinned key's bad signature rejects it (NoteError); unknown
    signature lines are dropped from the returned note. Not final is not an error: the
    caller reads ``final``."""
    text, verified = verify_note(note, trust.all_keys())
    try:
        checkpoint = parse_checkpoint(text)
    except CheckpointError as exc:
        raise NoteError(f"not a checkpoint: {exc}") from None
    if checkpoint.origin != trust.origin:
        raise NoteError(f"checkpoint of origin {checkpoint.origin!r}, the trust file pins "
                        f"{trust.origin!r}")
    orgs = [org for v in verified if (org := trust.org_of(v.key)) is not None]
    witnesses = [v for v in verified if v.key in trust.witnesses]
    kept = signature_lines(note, [v.key for v in verified])
    return Cosigned(checkpoint, text + "\n" + "".join(s.line() for s in kept),
                    sorted(orgs), [w.key.name for w in witnesses], trust.quorum,
                    trust.witness_quorum,
                    {w.key.name: int(w.timestamp or 0) for w in witnesses})


def merge_notes(notes: Mapping[str, str], trust: CheckpointTrust
                ) -> tuple[Cosigned | None, list[dict[str, str]]]:
    """Merge the notes the nodes served (``{node: note}``) into one.

    Each note must carry a good signature by a pinned node key; a note that does not (a key
    the trust file does not pin, a bad signature, another origin) is refused and named.
    Notes over different bodies at the same size are a fork: the body most organisations
    signed is kept, the others are named. Returns the merged note (None when no note was
    usable) and the problems found.
    """
    problems: list[dict[str, str]] = []
    by_body: dict[str, list[NoteSignature]] = {}
    signers: dict[str, set[str]] = {}
    for node, note in notes.items():
        try:
            checked = check_cosigned(note, trust)
        except NoteError as exc:
            problems.append({"node": node, "problem": f"refused: {exc}"})
            continue
        if not checked.signed_by:
            problems.append({"node": node, "problem": "refused: no pinned node key signed it"})
            continue
        text, _ = parse_note(checked.note)
        lines = by_body.setdefault(text, [])
        for line in parse_note(checked.note)[1]:
            if line not in lines:
                lines.append(line)
        signers.setdefault(text, set()).update(checked.signed_by)
    if not by_body:
        return None, problems
    best = max(by_body, key=lambda body: len(signers[body]))
    for body in by_body:
        if body != best:
            problems.append({"node": ",".join(sorted(signers[body])),
                             "problem": "signed a different root at the same size (fork): "
                                        + body.replace("\n", " ").strip()})
    merged = best + "\n" + "".join(line.line() for line in by_body[best])
    return check_cosigned(merged, trust), problems
