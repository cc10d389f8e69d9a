"""Event ids as GS1's reference generator (``epcis-event-hash-generator``) computes them.

It reads the whole JSON-LD document itself: its own JSON-LD expansion, canonical order and
its bundled copy of the versioned EPCIS 2.0 context (no network).
"""

from __future__ import annotations

import copy
from typing import Any

from epcis_event_hash_generator import hash_generator, json_to_py


def reference_ids(document: dict[str, Any]) -> list[str]:
    """The generator's ``eventID`` of every event in ``document``, in order."""
    events = json_to_py.event_list_from_epcis_document_json(copy.deepcopy(document))
    return hash_generator.epcis_hashes_from_events(events)
