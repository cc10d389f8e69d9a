"""Checkpoints of the ledger and the witness protocol, pure: known answers for the formats
(the tlog-witness spec's own example request; the checkpoint and note of a fixed ledger),
then the merge rules: only pinned keys count, a fork is named, the quorum decides."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol import ORGS
from market_protocol.signed_note import COSIGNATURE_V1, NoteError, Signer, parse_vkey, sign_note
from market_protocol.witness_request import (
    WitnessRequestError,
    format_add_checkpoint,
    parse_add_checkpoint,
)
from trace_ledger.checkpoint_verify import first_differing_block
from trace_ledger.cosigned import (
    DEFAULT_ORIGIN,
    CheckpointTrust,
    check_cosigned,
    checkpoint_for,
    merge_notes,
    node_key_name,
)
from trace_ledger.trust import TrustFileError, load_checkpoint_trust

# c2sp.org/tlog-witness, "Example request body".
SPEC_REQUEST = """old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
"""

# A ledger of five blocks whose hashes are SHA-256(0), ..., SHA-256(4).
BLOCK_HASHES = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
CHECKPOINT_BODY = "tracepay.ledger/LEDGER\n5\nazE7YRtAZ2ueHf1wxFA/I3n4jw8cJ0D7fhyswywRNGU=\n"
# The retail node's note over it, with the key whose seed is bytes 0..31.
SEED = bytes(range(32))
RETAIL_VKEY = "tracepay-retail_market+3ea22567+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
RETAIL_NOTE = CHECKPOINT_BODY + (
    "\n\u2014 tracepay-retail_market PqIlZ7gYn3AqeFLTO1xkvtR8rNC2DrslS31BbwdKqLRDSAk3XMtzF5"
    "KnqOxtXqRr40ULnT9pNAViWhwVP+6SsglOIw0=\n")


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH written out recursively, independent of market_protocol.merkle."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_the_spec_example_request_parses_and_formats_back():
    parsed = parse_add_checkpoint(SPEC_REQUEST.encode())
    assert parsed.old_size == 20852014
    assert [base64.b64encode(h).decode()[:6] for h in parsed.proof] == [
        "PlRNCr", "jrJZDm", "5+pKlU", "/6WVhP"]
    assert parsed.note.startswith("example.com/behind-the-sofa\n20852163\n")
    assert format_add_checkpoint(parsed.old_size, parsed.proof, parsed.note) == SPEC_REQUEST


@pytest.mark.parametrize("body", [
    "old 01\n\nnote\n", "new 1\n\nnote\n", "old 1\nnot-base64!\n\nnote\n",
    "old 1\nAAAA\n\nnote\n", "old 1\n", "old 0\n" + "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n" * 64
    + "\nnote\n"])
def test_malformed_requests_are_refused(body: str):
    with pytest.raises(WitnessRequestError):
        parse_add_checkpoint(body)


def test_checkpoint_and_node_note_known_answers():
    checkpoint = checkpoint_for(DEFAULT_ORIGIN, BLOCK_HASHES)
    assert checkpoint.body() == CHECKPOINT_BODY
    assert checkpoint.root_hash == _mth([hashlib.sha256(b"\x00" + h).digest()
                                         for h in BLOCK_HASHES])
    signer = Signer(node_key_name("retail_market"), Ed25519PrivateKey.from_private_bytes(SEED))
    assert signer.verifier.vkey() == RETAIL_VKEY
    assert sign_note(CHECKPOINT_BODY, [signer]) == RETAIL_NOTE


def _signers() -> dict[str, Signer]:
    return {org: Signer(node_key_name(org), Ed25519PrivateKey.generate()) for org in ORGS}


def _trust(signers: dict[str, Signer], quorum: int = 3, witnesses=(), witness_quorum=0
           ) -> CheckpointTrust:  # noqa: ANN001
    return CheckpointTrust(DEFAULT_ORIGIN, {o: s.verifier for o, s in signers.items()},
                           quorum, tuple(witnesses), witness_quorum)


def test_three_notes_merge_into_one_final_note():
    signers = _signers()
    notes = {org: sign_note(CHECKPOINT_BODY, [s]) for org, s in signers.items()}
    merged, problems = merge_notes(notes, _trust(signers))
    assert problems == [] and merged is not None and merged.final
    assert merged.signed_by == sorted(ORGS)
    assert merged.note.startswith(CHECKPOINT_BODY + "\n")
    assert merged.note.count("\u2014 tracepay-") == 3
    assert check_cosigned(merged.note, _trust(signers)).final


def test_a_key_the_trust_file_does_not_pin_is_refused_and_the_quorum_decides():
    signers = _signers()
    notes = {org: sign_note(CHECKPOINT_BODY, [s]) for org, s in signers.items()}
    impostor = Signer(node_key_name("retail_market"), Ed25519PrivateKey.generate())
    notes["retail_market"] = sign_note(CHECKPOINT_BODY, [impostor])
    merged, problems = merge_notes(notes, _trust(signers))
    assert [p["node"] for p in problems] == ["retail_market"]
    assert "no signature from a known key" in problems[0]["problem"]
    assert merged is not None and not merged.final and len(merged.signed_by) == 2
    assert "tracepay-retail_market" not in merged.note
    two, _ = merge_notes(notes, _trust(signers, quorum=2))
    assert two is not None and two.final


def test_a_fork_is_named_and_a_bad_known_signature_rejects_the_note():
    signers = _signers()
    other = checkpoint_for(DEFAULT_ORIGIN, BLOCK_HASHES[:4] + [b"\x07" * 32]).body()
    notes = {"a": sign_note(CHECKPOINT_BODY, [signers["production_base"]]),
             "b": sign_note(CHECKPOINT_BODY, [signers["wholesale_market"]]),
             "c": sign_note(other, [signers["retail_market"]])}
    merged, problems = merge_notes(notes, _trust(signers))
    assert merged is not None and merged.checkpoint.body() == CHECKPOINT_BODY
    assert problems[0]["node"] == "retail_market" and "fork" in problems[0]["problem"]
    tampered = notes["a"].replace("LEDGER\n5", "LEDGER\n6")
    with pytest.raises(NoteError, match="does not verify"):
        check_cosigned(tampered, _trust(signers))
    foreign = sign_note("other.log/x\n5\n" + CHECKPOINT_BODY.split("\n")[2] + "\n",
                        [signers["production_base"]])
    with pytest.raises(NoteError, match="origin"):
        check_cosigned(foreign, _trust(signers))


def test_witness_cosignatures_count_toward_the_witness_quorum():
    signers = _signers()
    witness = Signer("tracepay-witness", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
    trust = _trust(signers, witnesses=[witness.verifier], witness_quorum=1)
    note = sign_note(CHECKPOINT_BODY, list(signers.values()))
    assert not check_cosigned(note, trust).final
    cosigned = check_cosigned(note + witness.signature(CHECKPOINT_BODY, 1700000000).line(),
                              trust)
    assert cosigned.final and cosigned.witnessed_by == ["tracepay-witness"]
    assert cosigned.witness_times == {"tracepay-witness": 1700000000}


def test_old_trust_files_still_load_with_a_quorum_of_all(tmp_path):  # noqa: ANN001
    signers = _signers()
    raw = {org: base64.urlsafe_b64encode(s.verifier.public_key).rstrip(b"=").decode()
           for org, s in signers.items()}
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema": "tracepay.ledger-trust/1", "orgs": list(ORGS),
                               "node_keys": raw}))
    trust = load_checkpoint_trust(old)
    assert trust.quorum == 3 and trust.origin == DEFAULT_ORIGIN and trust.witnesses == ()
    assert {o: k.vkey() for o, k in trust.node_keys.items()} == {
        o: s.verifier.vkey() for o, s in signers.items()}
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema": "tracepay.ledger-trust/1", "node_keys": raw,
                                 "vkeys": {"retail_market": RETAIL_VKEY}}))
    with pytest.raises(TrustFileError, match="not its node key"):
        load_checkpoint_trust(wrong)
    bad_quorum = tmp_path / "q.json"
    bad_quorum.write_text(json.dumps({"schema": "tracepay.ledger-trust/1", "node_keys": raw,
                                      "quorum": 4}))
    with pytest.raises(TrustFileError, match="quorum"):
        load_checkpoint_trust(bad_quorum)
    assert parse_vkey(RETAIL_VKEY).name == "tracepay-retail_market"


def test_the_first_differing_block_is_found_by_bisection():
    genuine = [bytes([i]) * 32 for i in range(1, 21)]
    for first in (1, 2, 7, 20):
        local = genuine[:first - 1] + [b"\xff" * 32] * (21 - first)
        asked: list[int] = []

        def at(height: int, asked: list[int] = asked) -> bytes:
            asked.append(height)
            return genuine[height - 1]

        assert first_differing_block(local, at, 20) == first
        assert len(asked) <= 5
