"""Our EPCIS event ids against GS1's reference event hash generator (epcis-event-hash-generator).

The generator reads the exported JSON-LD document itself (its own JSON-LD expansion, its
own canonical order, its bundled copy of the versioned EPCIS 2.0 context, no network), so a
partner that checks or de-duplicates our events by their hash ids gets the ids we wrote.
"""

from __future__ import annotations

import copy
import random

import pytest
from epcis_chains import bridge_client, post_chain
from epcis_event_hash_generator.file_document_loader import file_document_loader
from epcis_reference import reference_ids

from ledger_bridge.epcis import EPCIS_CONTEXT

CHAINS = 30


def test_our_context_is_one_the_generator_ships():
    """The generator must not go to the network for the context: it ships this one."""
    loaded = file_document_loader()(EPCIS_CONTEXT)
    assert loaded["documentUrl"] == EPCIS_CONTEXT and "@context" in loaded["document"]


@pytest.fixture
def client(tmp_path):
    client, service = bridge_client(tmp_path / "b")
    yield client
    service.close()


def test_every_exported_event_id_equals_the_reference_generators(client):
    rng = random.Random(19)
    chains = [post_chain(client, rng, seq) for seq in range(1, CHAINS + 1)]
    checked: dict[str, dict] = {}
    for chain in chains:
        queries = [f"trace_code={trade['trace_code']}" for trade in chain.trades]
        for query in [*queries, f"lot={chain.farm_code}-0"]:
            document = client.get(f"/v1/epcis?{query}").json
            events = document["epcisBody"]["eventList"]
            ours = [event["eventID"] for event in events]
            assert ours, query
            assert reference_ids(document) == ours, query
            checked.update((event["eventID"], event) for event in events)
    events = list(checked.values())
    assert len(events) >= CHAINS * 5
    # every kind of event and field we emit was among those compared
    assert {(e["type"], e["bizStep"]) for e in events} == {
        ("ObjectEvent", "commissioning"), ("TransactionEvent", "shipping"),
        ("TransactionEvent", "receiving"), ("ObjectEvent", "inspecting")}
    quantities = [q for e in events for q in e["quantityList"]]
    assert {q.get("uom") for q in quantities} == {"KGM", None}
    assert any(q["epcClass"].startswith("https://id.gs1.org/01/") for q in quantities)
    assert any("tracepay:productionPlace" in e.get("ilmd", {}) for e in events)
    reports = [r for e in events for s in e.get("sensorElementList", []) for r in s["sensorReport"]]
    assert any("value" in r for r in reports) and any("stringValue" in r for r in reports)
    assert any("tracepay:method" in e for e in events)


def test_a_changed_event_no_longer_matches_its_id(client):
    """The comparison can fail: an edited quantity gives the generator another id."""
    chain = post_chain(client, random.Random(7), 1)
    document = client.get(f"/v1/epcis?trace_code={chain.shopper_code}").json
    edited = copy.deepcopy(document)
    edited["epcisBody"]["eventList"][0]["quantityList"][0]["quantity"] += 1
    ours = [e["eventID"] for e in document["epcisBody"]["eventList"]]
    theirs = reference_ids(edited)
    assert theirs[0] != ours[0] and theirs[1:] == ours[1:]
