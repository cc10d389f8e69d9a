"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 signatures and cosignatures.

A note is UTF-8 text ending in a newline, a blank line, then one line per signature:
``— <key name> base64(4-byte key ID || signature)``. Two signature types are built here:

* ``0x01`` Ed25519 over the note text (what each organisation's node signs its checkpoints
  with);
* ``0x04`` timestamped Ed25519 cosignatures (c2sp.org/tlog-cosignature): the signed message
  is ``cosignature/v1\\ntime <T>\\n`` followed by the note text, and the signature bytes are
  the 8-byte big-endian ``T`` then the 64-byte signature (what an outside witness signs).

Key IDs are ``SHA-256(name || 0x0A || type || public key)[:4]``; verifier keys travel as
``<name>+<hex key ID>+base64(type || public key)`` ("vkeys"). Verification follows the
spec: signatures from unknown keys are ignored, a signature from a known key that fails
rejects the whole note, and a note with no verified known signature is rejected. Pure:
no I/O; known-answer tests pin it to the published examples.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["ED25519", "COSIGNATURE_V1", "NoteError", "NoteSignature", "VerifierKey", "Signer",
           "Verified", "key_id", "parse_vkey", "signer_from_skey", "parse_note", "sign_note",
           "add_signatures", "verify_note"]

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
_DASH = "\u2014 "
#: The spec asks verifiers to accept at least 16 signatures; more than this is refused.
MAX_SIGNATURES = 64


class NoteError(ValueError):
    """A note, key or signature that is malformed, or a note that does not verify."""


def key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """The 4-byte key ID of a key: ``SHA-256(name || "\\n" || type || public key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]


def _check_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key a verifier is configured with (from a trust file, never from the note)."""

    name: str
    sig_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.sig_type, self.public_key)

    def vkey(self) -> str:
        material = base64.b64encode(bytes([self.sig_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    @classmethod
    def from_public_key(cls, name: str, key: Ed25519PublicKey,
                        sig_type: int = ED25519) -> VerifierKey:
        return cls(_check_name(name), sig_type,
                   key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def parse_vkey(text: str) -> VerifierKey:
    """``name+hexid+base64(type || key)``; the ID must be the key's own derivation."""
    name, sep, rest = text.strip().partition("+")
    hex_id, sep2, material = rest.partition("+")
    if not sep or not sep2:
        raise NoteError(f"not a verifier key: {text!r}")
    try:
        raw = base64.b64decode(material, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"verifier key {text!r} is not hex+base64: {exc}") from None
    if len(hex_id) != 8 or not raw or raw[0] not in (ED25519, COSIGNATURE_V1) \
            or len(raw) != 33:
        raise NoteError(f"verifier key {text!r} is not an Ed25519 key of type 0x01 or 0x04")
    key = VerifierKey(_check_name(name), raw[0], raw[1:])
    if key.key_id != wanted:
        raise NoteError(f"verifier key {text!r}: its ID is not derived from its name and key")
    return key


@dataclass(frozen=True, slots=True)
class Signer:
    """A private key that signs notes under ``name``; ``sig_type`` 0x01 or 0x04."""

    name: str
    private_key: Ed25519PrivateKey
    sig_type: int = ED25519

    @property
    def verifier(self) -> VerifierKey:
        return VerifierKey.from_public_key(self.name, self.private_key.public_key(),
                                           self.sig_type)

    def signature(self, text: str, timestamp: int | None = None) -> NoteSignature:
        """Sign ``text``; a cosignature needs ``timestamp`` (POSIX seconds)."""
        blob = _signed_message(self.sig_type, text, timestamp)
        signature = self.private_key.sign(blob)
        if self.sig_type == COSIGNATURE_V1:
            assert timestamp is not None
            signature = struct.pack(">Q", timestamp) + signature
        return NoteSignature(self.name, self.verifier.key_id, signature)


def signer_from_skey(text: str) -> Signer:
    """A Go-style signer key: ``PRIVATE+KEY+name+hexid+base64(type || 32-byte seed)``."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("not a signer key (PRIVATE+KEY+name+id+key)")
    _, _, name, hex_id, material = parts
    try:
        raw = base64.b64decode(material, validate=True)
    except binascii.Error as exc:
        raise NoteError(f"signer key is not base64: {exc}") from None
    if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
        raise NoteError("signer key is not an Ed25519 seed of type 0x01 or 0x04")
    signer = Signer(_check_name(name), Ed25519PrivateKey.from_private_bytes(raw[1:]), raw[0])
    if signer.verifier.key_id.hex() != hex_id:
        raise NoteError("signer key: its ID is not derived from its name and key")
    return signer


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{_DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode()}\n"


@dataclass(frozen=True, slots=True)
class Verified:
    """A signature that verified: by whom, and (for a cosignature) when."""

    key: VerifierKey
    timestamp: int | None = None


def _signed_message(sig_type: int, text: str, timestamp: int | None) -> bytes:
    if sig_type == ED25519:
        return text.encode()
    if sig_type == COSIGNATURE_V1:
        if timestamp is None or not 0 <= timestamp < 2**63:
            raise NoteError("a cosignature needs a timestamp in 0..2^63-1")
        return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()
    raise NoteError(f"signature type {sig_type:#04x} is not supported")


def parse_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a note into its text and signature lines; NoteError when malformed."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("a note must be UTF-8") from None
    if any(c < " " and c != "\n" for c in note):
        raise NoteError("a note must not contain control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("a note is text, a blank line, then signature lines")
    text, lines = note[:split + 1], note[split + 2:].splitlines()
    if not lines:
        raise NoteError("a note needs at least one signature")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(_DASH):
            raise NoteError(f"not a signature line: {line[:80]!r}")
        name, space, encoded = line[len(_DASH):].partition(" ")
        try:
            blob = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteError(f"signature of {name!r} is not base64") from None
        if not space or len(blob) < 5:
            raise NoteError(f"signature line of {name!r} is malformed")
        signatures.append(NoteSignature(_check_name(name), blob[:4], blob[4:]))
    return text, signatures


def sign_note(text: str, signers: Sequence[Signer], *, timestamp: int | None = None) -> str:
    """A note of ``text`` signed by each signer (cosigners stamp ``timestamp``)."""
    if not text.endswith("\n") or any(c < " " and c != "\n" for c in text):
        raise NoteError("note text must end with a newline and hold no control characters")
    return text + "\n" + "".join(s.signature(text, timestamp).line() for s in signers)


def add_signatures(note: str, signers: Sequence[Signer], *, timestamp: int | None = None
                   ) -> str:
    """``note`` with more signatures: a cosigner adds its line, keeping the others."""
    text, _ = parse_note(note)
    return note + "".join(s.signature(text, timestamp).line() for s in signers)


def verify_note(note: str | bytes, keys: Iterable[VerifierKey]
                ) -> tuple[str, list[Verified]]:
    """The note's text and the known keys whose signatures verified.

    Unknown keys (name or ID not both matching) are ignored; a known key's bad signature
    rejects the note; a note no known key signed is rejected.
    """
    text, signatures = parse_note(note)
    known = {(key.name, key.key_id): key for key in keys}
    verified: list[Verified] = []
    for signature in signatures:
        key = known.get((signature.name, signature.key_id))
        if key is None:
            continue
        timestamp, raw = None, signature.signature
        if key.sig_type == COSIGNATURE_V1:
            if len(raw) != 72:
                raise NoteError(f"cosignature of {key.name!r} is not 8 + 64 bytes")
            timestamp, raw = struct.unpack(">Q", raw[:8])[0], raw[8:]
        try:
            Ed25519PublicKey.from_public_bytes(key.public_key).verify(
                raw, _signed_message(key.sig_type, text, timestamp))
        except (InvalidSignature, ValueError):
            raise NoteError(f"signature of {key.name!r} does not verify") from None
        if all(v.key != key for v in verified):
            verified.append(Verified(key, timestamp))
    if not verified:
        raise NoteError("no signature from a known key")
    return text, verified
