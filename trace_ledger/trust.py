"""What a verifier trusts, kept outside the directory it checks: the pinned public keys of
the orderer and of every organisation (the trust file), and the block hashes it has already
seen verified (the checkpoint file).

Keys read from the data being checked prove nothing: whoever can rewrite the node files can
also replace the keys beside them. The trust file is written once at deployment from the
nodes' public keys and handed to every verifier (``tracepay ledger verify --trust``, the
consumer app's ``ledger_keys_file``). Pinned keys alone cannot tell a history re-signed
with the genuine private keys from the original, so a verifier also keeps checkpoints: the
hash of every block it verified. A later run that finds a different block at a
checkpointed height, or fewer blocks, names that block.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from market_protocol import ORGS
from market_protocol.signed_note import VerifierKey, parse_vkey
from market_protocol.signing import public_key_raw_b64, unb64u

from .cosigned import DEFAULT_ORIGIN, CheckpointTrust, node_key_name
from .signers import ORDERER, load_public_key

__all__ = ["TRUST_SCHEMA", "CHECKPOINT_SCHEMA", "TrustFileError", "trust_document",
           "write_trust_file", "load_trust_file", "load_checkpoints", "save_checkpoints",
           "inside", "node_trust_document", "load_node_keys", "load_checkpoint_trust"]

TRUST_SCHEMA = "tracepay.ledger-trust/1"
CHECKPOINT_SCHEMA = "tracepay.ledger-checkpoints/1"


class TrustFileError(ValueError):
    """A trust or checkpoint file is missing, unreadable or incomplete; the message says
    which file and what is wrong."""


def trust_document(data_dir: Path, orgs: Sequence[str] = ORGS) -> dict[str, Any]:
    """The trust file's content from the public halves of the keys under ``data_dir``:
    what a deployment pins once, before anyone could have rewritten the data."""
    keys = {signer: public_key_raw_b64(load_public_key(data_dir, signer))
            for signer in (ORDERER, *orgs)}
    return {"schema": TRUST_SCHEMA, "orgs": list(orgs), "keys": keys}


def write_trust_file(data_dir: Path, path: Path, orgs: Sequence[str] = ORGS) -> Path:
    """Write the trust file of the ledger under ``data_dir`` to ``path`` (public keys only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(trust_document(data_dir, orgs), indent=2) + "\n",
                    encoding="utf-8")
    return path


def load_trust_file(path: Path) -> dict[str, Ed25519PublicKey]:
    """``{signer: public key}`` for the orderer and every organisation named in the file;
    every one must be there, so a verifier never checks fewer signatures than deployed."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrustFileError(f"trust file {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("schema") != TRUST_SCHEMA:
        raise TrustFileError(f"trust file {path}: not a {TRUST_SCHEMA} document")
    orgs, raw_keys = document.get("orgs"), document.get("keys")
    if not isinstance(orgs, list) or not orgs or not isinstance(raw_keys, dict):
        raise TrustFileError(f"trust file {path}: needs 'orgs' (a list) and 'keys' (an object)")
    keys = {}
    for signer in (ORDERER, *orgs):
        raw = raw_keys.get(signer)
        try:
            keys[signer] = Ed25519PublicKey.from_public_bytes(unb64u(str(raw)))
        except (ValueError, TypeError) as exc:
            raise TrustFileError(f"trust file {path}: no usable key for {signer}: "
                                 f"{exc}") from exc
    return keys


def node_trust_document(node_dirs: dict[str, Path], *, quorum: int | None = None,
                        origin: str = DEFAULT_ORIGIN, witnesses: Sequence[str] = (),
                        witness_quorum: int = 0) -> dict[str, Any]:
    """The trust file of organisation nodes (``tracepay ledger-node`` directories): each
    node's public key under ``node_keys`` (raw, base64url) and ``vkeys`` (C2SP verifier
    keys), read once at deployment from its key file; the checkpoint ``origin``, the
    ``quorum`` of organisations that makes a checkpoint final (default: all) and the
    witnesses' verifier keys of which ``witness_quorum`` must cosign."""
    from market_protocol.signing import load_or_create_private_key

    keys, vkeys = {}, {}
    for org, directory in node_dirs.items():
        path = Path(directory) / "node_key.pem"
        if not path.exists():
            raise FileNotFoundError(f"no node key for {org} at {path}")
        public = load_or_create_private_key(path).public_key()
        keys[org] = public_key_raw_b64(public)
        vkeys[org] = VerifierKey.from_public_key(node_key_name(org), public).vkey()
    document = {"schema": TRUST_SCHEMA, "orgs": list(node_dirs), "node_keys": keys,
                "vkeys": vkeys, "origin": origin,
                "quorum": len(node_dirs) if quorum is None else quorum,
                "witnesses": list(witnesses), "witness_quorum": witness_quorum}
    _checkpoint_trust(document, "the new trust file")  # refuse to write a bad one
    return document


def load_node_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """``{org: public key}`` of the organisation nodes a trust file names (``node_keys``)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrustFileError(f"trust file {path}: {exc}") from exc
    raw_keys = document.get("node_keys") if isinstance(document, dict) else None
    if document.get("schema") != TRUST_SCHEMA or not isinstance(raw_keys, dict) or not raw_keys:
        raise TrustFileError(f"trust file {path}: names no node keys ('node_keys')")
    try:
        return {org: Ed25519PublicKey.from_public_bytes(unb64u(str(raw)))
                for org, raw in raw_keys.items()}
    except (ValueError, TypeError) as exc:
        raise TrustFileError(f"trust file {path}: unusable node key: {exc}") from exc


def load_checkpoint_trust(path: Path) -> CheckpointTrust:
    """The checkpoint trust of a node trust file: pinned node keys, origin, quorum and
    witnesses. A file written before checkpoints existed (``node_keys`` only) still loads:
    its keys get the node key names, the default origin and a quorum of every
    organisation."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrustFileError(f"trust file {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("schema") != TRUST_SCHEMA:
        raise TrustFileError(f"trust file {path}: not a {TRUST_SCHEMA} document")
    return _checkpoint_trust(document, f"trust file {path}")


def _checkpoint_trust(document: dict[str, Any], where: str) -> CheckpointTrust:
    raw_keys = document.get("node_keys")
    if not isinstance(raw_keys, dict) or not raw_keys:
        raise TrustFileError(f"{where}: names no node keys ('node_keys')")
    vkeys = document.get("vkeys") or {}
    try:
        node_keys = {}
        for org, raw in raw_keys.items():
            public = Ed25519PublicKey.from_public_bytes(unb64u(str(raw)))
            key = VerifierKey.from_public_key(node_key_name(org), public)
            if org in vkeys and parse_vkey(str(vkeys[org])) != key:
                raise TrustFileError(f"{where}: the vkey of {org} is not its node key "
                                     f"({key.vkey()})")
            node_keys[org] = key
        witnesses = tuple(parse_vkey(str(v)) for v in document.get("witnesses") or [])
        quorum = document.get("quorum", len(node_keys))
        witness_quorum = document.get("witness_quorum", 0)
        if not isinstance(quorum, int) or not isinstance(witness_quorum, int):
            raise TrustFileError(f"{where}: quorum and witness_quorum must be integers")
        return CheckpointTrust(str(document.get("origin") or DEFAULT_ORIGIN), node_keys,
                               quorum, witnesses, witness_quorum)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, TrustFileError):
            raise
        raise TrustFileError(f"{where}: {exc}") from exc


def load_checkpoints(path: Path) -> list[str]:
    """Block hashes by height (item 0 is block 1) a verifier has seen verified; [] when the
    file does not exist yet (the first run starts it)."""
    if not Path(path).exists():
        return []
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrustFileError(f"checkpoint file {path}: {exc}") from exc
    hashes = document.get("block_hashes") if isinstance(document, dict) else None
    if (document.get("schema") != CHECKPOINT_SCHEMA or not isinstance(hashes, list)
            or not all(isinstance(h, str) for h in hashes)):
        raise TrustFileError(f"checkpoint file {path}: not a {CHECKPOINT_SCHEMA} document")
    return hashes


def save_checkpoints(path: Path, hashes: Sequence[str]) -> None:
    """Replace the checkpoint file atomically (a crash leaves the old one or the new one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"schema": CHECKPOINT_SCHEMA,
                                     "block_hashes": list(hashes)}) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` lies under ``directory``: a trust file kept in the data it vouches
    for could be rewritten with that data."""
    return Path(path).resolve().is_relative_to(Path(directory).resolve())

