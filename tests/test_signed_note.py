"""C2SP signed-note, tlog-checkpoint and tlog-cosignature: known answers from the published
examples (golang.org/x/mod sumdb/note; a real staging CT checkpoint cosigned by a public
witness), then the rules a verifier must keep."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from market_protocol.signed_note import (
    COSIGNATURE_V1,
    ED25519,
    NoteError,
    Signer,
    VerifierKey,
    add_signatures,
    parse_note,
    parse_vkey,
    sign_note,
    signer_from_skey,
    verify_note,
)

# golang.org/x/mod/sumdb/note: the package documentation's example.
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_TEXT = ("If you think cryptography is the answer to your problem,\n"
              "then you don't know what your problem is.\n")
PETER_NOTE = (PETER_TEXT + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcEl"
              "ZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")

# A staging CT log's checkpoint: the log's Ed25519 signature (0x01), a witness's
# cosignature (0x04), and signatures of types this code does not know.
CT_LOG_VKEY = ("arche2025h1.staging.ct.transparency.dev+ba2f06c0+"
               "AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f")
WITNESS_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
CT_CHECKPOINT = """arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

\u2014 arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
\u2014 arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
\u2014 transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
\u2014 remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
"""


def test_signing_the_published_example_gives_its_bytes():
    signer = signer_from_skey(PETER_SKEY)
    assert signer.verifier.vkey() == PETER_VKEY
    assert sign_note(PETER_TEXT, [signer]) == PETER_NOTE  # Ed25519 is deterministic


def test_the_published_example_verifies_and_any_change_does_not():
    text, verified = verify_note(PETER_NOTE, [parse_vkey(PETER_VKEY)])
    assert text == PETER_TEXT and [v.key.name for v in verified] == ["PeterNeumann"]
    with pytest.raises(NoteError, match="does not verify"):
        verify_note(PETER_NOTE.replace("cryptography", "cryptographY"), [parse_vkey(PETER_VKEY)])


def test_key_ids_are_the_spec_derivation():
    for vkey in (PETER_VKEY, CT_LOG_VKEY, WITNESS_VKEY):
        key = parse_vkey(vkey)
        assert key.vkey() == vkey
    assert parse_vkey(WITNESS_VKEY).sig_type == COSIGNATURE_V1
    assert parse_vkey(PETER_VKEY).sig_type == ED25519
    with pytest.raises(NoteError, match="not derived"):
        parse_vkey(PETER_VKEY.replace("c74f20a3", "c74f20a4"))


def test_a_real_cosigned_checkpoint_verifies_for_the_log_and_the_witness():
    text, verified = verify_note(CT_CHECKPOINT, [parse_vkey(CT_LOG_VKEY),
                                                 parse_vkey(WITNESS_VKEY)])
    checkpoint = parse_checkpoint(text)
    assert checkpoint.origin == "arche2025h1.staging.ct.transparency.dev"
    assert checkpoint.size == 1432088532 and checkpoint.body() == text
    names = {v.key.name: v.timestamp for v in verified}
    assert names["arche2025h1.staging.ct.transparency.dev"] is None
    assert names["remora.n621.de"] == int.from_bytes(
        base64.b64decode("2net5wAAAABqEiEgPlfF")[4:12], "big")


def test_a_clobbered_checkpoint_fails_for_every_known_key():
    forged = CT_CHECKPOINT.replace("1432088532", "42", 1)
    for vkey in (CT_LOG_VKEY, WITNESS_VKEY):
        with pytest.raises(NoteError, match="does not verify"):
            verify_note(forged, [parse_vkey(vkey)])


def test_unknown_keys_are_ignored_but_a_note_no_known_key_signed_is_refused():
    stranger = Signer("example.com/stranger", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(CT_CHECKPOINT, [stranger.verifier])
    # Same name, other key: its ID differs, so it is unknown, not a failure.
    impostor = Signer("PeterNeumann", Ed25519PrivateKey.generate())
    note = add_signatures(PETER_NOTE, [impostor])
    _, verified = verify_note(note, [parse_vkey(PETER_VKEY)])
    assert [v.key.name for v in verified] == ["PeterNeumann"]


def test_three_organisations_and_a_witness_cosign_one_checkpoint():
    orgs = [Signer(f"tracepay.example/{org}", Ed25519PrivateKey.generate())
            for org in ("production_base", "wholesale_market", "retail_market")]
    witness = Signer("regulator.example/witness", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    body = Checkpoint("tracepay.example/ledger", 7, bytes(range(32))).body()
    note = sign_note(body, orgs[:1])
    for org in orgs[1:]:
        note = add_signatures(note, [org])
    note = add_signatures(note, [witness], timestamp=1_796_000_000)
    text, verified = verify_note(note, [s.verifier for s in [*orgs, witness]])
    assert parse_checkpoint(text).size == 7
    assert {v.key.name for v in verified} == {s.name for s in [*orgs, witness]}
    assert [v.timestamp for v in verified if v.key.sig_type == COSIGNATURE_V1] == [1_796_000_000]
    with pytest.raises(NoteError, match="timestamp"):
        add_signatures(note, [witness])


@pytest.mark.parametrize("note", [
    "no blank line\n\u2014 a AAAAAAA=\n",
    PETER_TEXT + "\n",
    PETER_TEXT + "\n- PeterNeumann x08go/ZJk=\n",
    PETER_TEXT + "\n\u2014 PeterNeumann not*base64\n",
    PETER_TEXT + "\n\u2014 PeterNeumann AAA=\n",
    PETER_TEXT.replace("\n", "\r\n") + "\n\u2014 PeterNeumann x08go/ZJk=\n",
    PETER_NOTE.rstrip("\n"),
    b"\xff\xfe\n\n\xe2\x80\x94 a AAAAAAA=\n",
])
def test_malformed_notes_are_refused(note):
    with pytest.raises(NoteError):
        parse_note(note)


def test_checkpoint_bodies_round_trip_and_bad_ones_are_refused():
    checkpoint = Checkpoint("example.com/log", 0, b"\x00" * 32, ("ext line",))
    assert parse_checkpoint(checkpoint.body()) == checkpoint
    for bad in ("example.com/log\n01\nAAAA\n", "example.com/log\n1\n", "o\n1\n!!\n",
                "o\n1\n" + base64.b64encode(b"short").decode() + "\n", "o\n1\nAAAA"):
        with pytest.raises(CheckpointError):
            parse_checkpoint(bad)
    with pytest.raises(CheckpointError):
        Checkpoint("two\nlines", 1, b"\x00" * 32)


def test_verifier_keys_from_public_keys_round_trip():
    key = Ed25519PrivateKey.generate().public_key()
    vkey = VerifierKey.from_public_key("tracepay.example/retail_market", key)
    assert parse_vkey(vkey.vkey()) == vkey
    with pytest.raises(NoteError):
        VerifierKey.from_public_key("has space", key)
