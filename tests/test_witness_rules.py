"""The witness's rules, through its app on a real SQLite state file: the spec's status
codes for every refusal, and the check-and-update that racing requests cannot split."""

from __future__ import annotations

import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from market_protocol import ORGS, merkle
from market_protocol.signed_note import COSIGNATURE_V1, Signer, sign_note, verify_note
from market_protocol.witness_request import SIZE_TYPE, format_add_checkpoint
from trace_ledger.cosigned import DEFAULT_ORIGIN, CheckpointTrust, checkpoint_for, node_key_name
from trace_ledger.witness.app import create_app
from trace_ledger.witness.state import WitnessState

NODES = [Signer(node_key_name(org), Ed25519PrivateKey.generate()) for org in ORGS]
WITNESS = Signer("tracepay-witness", Ed25519PrivateKey.generate(), COSIGNATURE_V1)
TRUST = CheckpointTrust(DEFAULT_ORIGIN, {o: s.verifier for o, s in zip(ORGS, NODES, strict=True)}, 3)
HASHES = [bytes([i]) * 32 for i in range(1, 11)]


def note(size: int, hashes: list[bytes] = HASHES) -> str:
    return sign_note(checkpoint_for(DEFAULT_ORIGIN, hashes[:size]).body(), NODES)


def proof(old: int, new: int) -> list[bytes]:
    return merkle.consistency_proof([merkle.leaf_hash(h) for h in HASHES[:new]], old)


@pytest.fixture
def client(tmp_path):  # noqa: ANN001, ANN201
    state = WitnessState(tmp_path / "witness.sqlite")
    app = create_app(state, TRUST, WITNESS)
    app.config.update(TESTING=True)
    yield app.test_client()
    state.close()


def post(client, old: int, hashes: list[bytes], body: str):  # noqa: ANN001, ANN201
    return client.post("/add-checkpoint", data=format_add_checkpoint(old, hashes, body))


def test_extensions_are_cosigned_with_a_timestamped_cosignature(client):  # noqa: ANN001
    first = post(client, 0, [], note(4))
    assert first.status_code == 200
    cosigned = note(4) + first.get_data(as_text=True)
    _, verified = verify_note(cosigned, [WITNESS.verifier])
    assert verified[0].timestamp and verified[0].timestamp > 1_600_000_000
    assert post(client, 4, proof(4, 9), note(9)).status_code == 200
    assert post(client, 9, [], note(9)).status_code == 200  # the same tree again


def test_refusals_answer_the_specs_status_codes(client):  # noqa: ANN001
    assert post(client, 0, [], note(5)).status_code == 200
    stale = post(client, 0, [], note(3))
    assert stale.status_code == 409 and stale.content_type.startswith(SIZE_TYPE)
    assert stale.get_data(as_text=True) == "5\n"
    assert post(client, 5, [], note(3)).status_code == 400  # old above the new size
    forked = HASHES[:4] + [b"\xee" * 32] * 6
    assert post(client, 5, [], note(5, forked)).status_code == 422
    assert post(client, 5, proof(5, 8)[:-1], note(8)).status_code == 422  # bad proof
    two = sign_note(checkpoint_for(DEFAULT_ORIGIN, HASHES[:8]).body(), NODES[:2])
    assert post(client, 5, proof(5, 8), two).json["error"] == "no_quorum"
    bad = note(8).replace("8\n", "7\n", 1)
    assert post(client, 5, proof(5, 8), bad).json["error"] == "bad_signature"
    other = sign_note(checkpoint_for("elsewhere/log", HASHES[:8]).body(), NODES)
    assert post(client, 5, proof(5, 8), other).status_code == 404
    assert client.post("/add-checkpoint", data=b"\xff\xfe").status_code == 400
    refusals = client.get("/v1/refused").json["refused"]
    assert [r["status"] for r in refusals][::-1][:4] == [409, 400, 422, 422]


def test_empty_tree_rules(client):  # noqa: ANN001
    empty_wrong = sign_note(f"{DEFAULT_ORIGIN}\n0\n{'A' * 43}=\n", NODES)
    assert post(client, 0, [], empty_wrong).status_code == 422
    assert post(client, 0, [b"\x01" * 32], note(3)).status_code == 422
    assert post(client, 0, [], note(0)).status_code == 200


def test_racing_first_submissions_cosign_exactly_one(client):  # noqa: ANN001
    codes: list[int] = []
    threads = [threading.Thread(target=lambda size=size: codes.append(
        post(client, 0, [], note(size)).status_code)) for size in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == [200] + [409] * 7
